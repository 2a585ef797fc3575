//! PKCS#11 URIs (RFC 7512): which module, which token, which key, and where its PIN is.
//!
//! `pkcs11:token=authority-a;object=sign-2026?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin`
//!
//! Path attributes select the token (`token`, `serial`, `manufacturer`, `model`, `slot-id`) and
//! the key (`object`, `id`, `type`); query attributes name the module (`module-path`, or
//! `module-name` for the loader's search path) and the PIN's source: `pin-source=file:PATH`
//! (RFC 7512) or `pin-source=env:NAME` (ours). A `pin-value` is refused: a PIN never sits in a
//! configuration file. Unknown attributes are refused too (a typo must not select another key),
//! except vendor `x-` ones, which are ignored.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::KeyError;

/// A parsed PKCS#11 URI.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    text: String,
    /// The token's label.
    pub token: Option<String>,
    /// The token's serial number.
    pub serial: Option<String>,
    /// The token's manufacturer.
    pub manufacturer: Option<String>,
    /// The token's model.
    pub model: Option<String>,
    /// The slot's id.
    pub slot_id: Option<u64>,
    /// The key's label (`CKA_LABEL`).
    pub object: Option<String>,
    /// The key's id (`CKA_ID`), bytes.
    pub id: Option<Vec<u8>>,
    /// The module: a path, or a name for the dynamic loader to find.
    pub module: Module,
    /// Where the user PIN is read from.
    pub pin: Option<PinSource>,
}

/// The PKCS#11 module (vendor library) to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Module {
    /// `module-path`: the library file.
    Path(PathBuf),
    /// `module-name`: a name the dynamic loader resolves (`lib{name}.so`).
    Name(String),
}

/// Where a PIN is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// A file whose first line is the PIN.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let bad = |why: String| KeyError::Uri {
            uri: text.to_owned(),
            why,
        };
        let rest = text
            .strip_prefix("pkcs11:")
            .ok_or_else(|| bad("does not start with pkcs11:".to_owned()))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Self {
            text: text.to_owned(),
            token: None,
            serial: None,
            manufacturer: None,
            model: None,
            slot_id: None,
            object: None,
            id: None,
            module: Module::Name(String::new()),
            pin: None,
        };
        let mut module = None;
        for attribute in attributes(path, query).map_err(bad)? {
            let text_value = || attribute.text().map_err(bad);
            match (attribute.name, attribute.in_query) {
                ("token", false) => uri.token = Some(text_value()?),
                ("serial", false) => uri.serial = Some(text_value()?),
                ("manufacturer", false) => uri.manufacturer = Some(text_value()?),
                ("model", false) => uri.model = Some(text_value()?),
                ("slot-id", false) => {
                    uri.slot_id = Some(
                        text_value()?
                            .parse()
                            .map_err(|_| bad("slot-id is not a number".to_owned()))?,
                    )
                }
                ("object", false) => uri.object = Some(text_value()?),
                ("id", false) => uri.id = Some(attribute.value),
                ("type", false) => {
                    if text_value()? != "private" {
                        return Err(bad("type: a signing key is type=private".to_owned()));
                    }
                }
                ("module-path", true) => module = Some(Module::Path(PathBuf::from(text_value()?))),
                ("module-name", true) => module = Some(Module::Name(text_value()?)),
                ("pin-source", true) => uri.pin = Some(PinSource::parse(&text_value()?).map_err(bad)?),
                (name, in_query) => attribute_refused(name, in_query).map_err(bad)?,
            }
        }
        uri.module = module.ok_or_else(|| bad("names no module (module-path=… or module-name=…)".to_owned()))?;
        if uri.object.is_none() && uri.id.is_none() {
            return Err(bad("names no key (object=… or id=…)".to_owned()));
        }
        Ok(uri)
    }

    /// The same URI with a relative module path and PIN file taken relative to `base` (the
    /// configuration file's folder).
    pub fn rebased(mut self, base: &Path) -> Self {
        if let Module::Path(path) = &mut self.module {
            *path = base.join(&*path);
        }
        self.pin = self.pin.map(|pin| pin.rebased(base));
        self
    }
}

/// One `name=value` attribute of a key URI, percent-decoded.
pub(crate) struct Attribute<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: Vec<u8>,
    /// After the `?` (module and PIN) rather than in the path (which token, which key).
    pub(crate) in_query: bool,
}

impl Attribute<'_> {
    pub(crate) fn text(&self) -> Result<String, String> {
        String::from_utf8(self.value.clone()).map_err(|_| format!("{} is not UTF-8", self.name))
    }
}

/// The attributes of a URI's path (`;`-separated) and query (`&`-separated); a name given
/// twice is refused.
pub(crate) fn attributes<'a>(path: &'a str, query: &'a str) -> Result<Vec<Attribute<'a>>, String> {
    let mut found: Vec<Attribute<'a>> = Vec::new();
    let all = path
        .split(';')
        .map(|a| (a, false))
        .chain(query.split('&').map(|a| (a, true)))
        .filter(|(a, _)| !a.is_empty());
    for (attribute, in_query) in all {
        let (name, raw) = attribute
            .split_once('=')
            .ok_or_else(|| format!("{attribute:?} is not name=value"))?;
        if found.iter().any(|a| a.name == name) {
            return Err(format!("{name} is given twice"));
        }
        let value = percent_decode(raw).ok_or_else(|| format!("{name}: bad percent-encoding"))?;
        found.push(Attribute { name, value, in_query });
    }
    Ok(found)
}

/// The answer to an attribute a URI does not know: vendor `x-` ones are ignored, a PIN in the
/// URI and anything else refused.
pub(crate) fn attribute_refused(name: &str, in_query: bool) -> Result<(), String> {
    match (name, in_query) {
        ("pin-value", true) => {
            Err("pin-value: a PIN never sits in the configuration; use pin-source=file:… or env:…".to_owned())
        }
        (vendor, _) if vendor.starts_with("x-") => Ok(()),
        (other, _) => Err(format!("unknown attribute {other:?}")),
    }
}

impl PinSource {
    /// `file:PATH` (RFC 7512) or `env:NAME`.
    pub(crate) fn parse(value: &str) -> Result<Self, String> {
        if let Some(path) = value.strip_prefix("file:") {
            Ok(Self::File(PathBuf::from(path.strip_prefix("//").unwrap_or(path))))
        } else if let Some(name) = value.strip_prefix("env:") {
            Ok(Self::Env(name.to_owned()))
        } else {
            Err("pin-source is file:PATH or env:NAME".to_owned())
        }
    }

    /// The PIN: the file's first line, or the variable's value; never empty.
    pub(crate) fn read(&self) -> Result<Zeroizing<String>, String> {
        let text = match self {
            Self::File(path) => {
                Zeroizing::new(std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?)
            }
            Self::Env(name) => {
                Zeroizing::new(std::env::var(name).map_err(|_| format!("the environment has no {name}"))?)
            }
        };
        let pin = Zeroizing::new(text.lines().next().unwrap_or_default().to_owned());
        if pin.is_empty() {
            return Err("the PIN is empty".to_owned());
        }
        Ok(pin)
    }

    /// A PIN file taken relative to `base`.
    pub(crate) fn rebased(self, base: &Path) -> Self {
        match self {
            Self::File(path) => Self::File(base.join(path)),
            env => env,
        }
    }
}

/// Decodes `%XX` escapes; `None` for a malformed one.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_examples_and_ours_parse() {
        let uri = Pkcs11Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;\
             model=1.0;object=my-certificate;type=private;id=%69%95%3E%5C%F4%BD%EC%91;serial=\
             ?pin-source=file:/etc/token&module-path=/usr/lib/libsofthsm2.so",
        )
        .unwrap();
        assert_eq!(uri.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(uri.manufacturer.as_deref(), Some("Snake Oil, Inc."));
        assert_eq!(uri.id, Some(vec![0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91]));
        assert_eq!(uri.serial.as_deref(), Some(""));
        assert_eq!(uri.pin, Some(PinSource::File(PathBuf::from("/etc/token"))));
        assert_eq!(uri.module, Module::Path(PathBuf::from("/usr/lib/libsofthsm2.so")));
        let uri =
            Pkcs11Uri::parse("pkcs11:token=a;object=k;x-vendor=1?module-name=softhsm2&pin-source=env:PIN").unwrap();
        assert_eq!(uri.pin, Some(PinSource::Env("PIN".to_owned())));
        assert_eq!(uri.module, Module::Name("softhsm2".to_owned()));
        let rebased = Pkcs11Uri::parse("pkcs11:object=k?module-path=lib.so&pin-source=file:pin")
            .unwrap()
            .rebased(Path::new("/etc/zhengyin"));
        assert_eq!(rebased.module, Module::Path(PathBuf::from("/etc/zhengyin/lib.so")));
        assert_eq!(rebased.pin, Some(PinSource::File(PathBuf::from("/etc/zhengyin/pin"))));
    }

    #[test]
    fn bad_uris_are_refused_with_the_reason() {
        for (uri, why) in [
            ("pkcs12:object=k?module-path=m", "pkcs11:"),
            ("pkcs11:object=k", "module"),
            ("pkcs11:token=t?module-path=m", "names no key"),
            ("pkcs11:object=k?module-path=m&pin-value=1234", "never sits"),
            ("pkcs11:object=k;objekt=j?module-path=m", "unknown attribute"),
            ("pkcs11:object=k;object=j?module-path=m", "twice"),
            ("pkcs11:object=%zz?module-path=m", "percent"),
            ("pkcs11:object=k;type=cert?module-path=m", "type=private"),
            ("pkcs11:object=k;slot-id=one?module-path=m", "slot-id"),
            ("pkcs11:object=k?module-path=m&pin-source=http://pin", "pin-source"),
            ("pkcs11:object=k?module-path=m&pin-source", "name=value"),
        ] {
            let error = Pkcs11Uri::parse(uri).unwrap_err().to_string();
            assert!(error.contains(why), "{uri}: {error}");
        }
    }
}
