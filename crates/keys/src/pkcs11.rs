//! Signing keys in a PKCS#11 device (an HSM, a smart card, SoftHSM2 in tests).
//!
//! Each key keeps a pool of logged-in sessions, one per core ([`crate::pool`]). A module is loaded
//! and initialised once per process and shared by all its keys. When the device drops sessions,
//! forgets the login or goes away, a signing fails with [`CryptoError::Unavailable`] after one
//! recovery attempt: the pools are emptied, the module finalised and initialised again, and the
//! next signing opens fresh sessions and logs in — at most once a second, so a missing device is
//! not hammered.
//!
//! Mechanisms: Ed25519 with `CKM_EDDSA` (pure), ECDSA P-256 with `CKM_ECDSA` over a SHA-256
//! computed here (the output is already the P1363 `r‖s` the licences use), RSA with
//! `CKM_SHA256_RSA_PKCS`. Every signature is checked against the public key before it leaves.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;
use zhengyin_crypto::{Algorithm, CryptoError, PublicKey, Signer};

use crate::pool::Pool;
use crate::uri::{Module as ModuleSpec, Pkcs11Uri};
use crate::KeyError;

/// The shortest time between two re-initialisations of a module.
const RESET_INTERVAL: Duration = Duration::from_secs(1);

/// A private key in a PKCS#11 token, signing through a pool of sessions.
pub struct Pkcs11Key {
    uri: Pkcs11Uri,
    module: Arc<Module>,
    sessions: Arc<Sessions>,
    public: PublicKey,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key").field("uri", &self.uri).finish()
    }
}

/// A loaded module. `C_Initialize` is once per process, so all keys in it share this.
struct Module {
    context: Pkcs11,
    state: RwLock<ModuleState>,
}

struct ModuleState {
    /// Bumped by each re-initialisation: sessions and handles of an older one are void.
    generation: u64,
    last_reset: Option<Instant>,
    pools: Vec<Weak<Sessions>>,
}

/// One key's sessions, each logged in, with the key's handle in it.
struct Sessions {
    uri: Pkcs11Uri,
    pin: Zeroizing<String>,
    pool: Pool<(Session, ObjectHandle)>,
}

/// Why an operation failed: `Lost` is worth a re-initialisation, the others are not.
enum Failure {
    Lost(String),
    Login(String),
    Refused(String),
}

impl Pkcs11Key {
    /// Opens the key a URI names: loads the module, finds the token, logs in with the PIN from
    /// its source, finds exactly one private key and its public half. Every failure says which
    /// (module, PIN, token, key, algorithm), for the operator at start-up.
    pub fn open(uri: &Pkcs11Uri) -> Result<Self, KeyError> {
        let module = Module::load(&uri.module)?;
        let pin = read_pin(uri)?;
        let state = module.read();
        let sessions = Arc::new(Sessions {
            uri: uri.clone(),
            pin,
            pool: Pool::per_core(state.generation),
        });
        let (session, key) = sessions.open(&module.context).map_err(|f| sessions.start_error(f))?;
        let public = public_key(&session, key).map_err(|why| KeyError::Unsupported {
            uri: uri.to_string(),
            why,
        })?;
        sessions.pool.adopt(state.generation, (session, key));
        drop(state);
        module.write().pools.push(Arc::downgrade(&sessions));
        Ok(Self {
            uri: uri.clone(),
            module,
            sessions,
            public,
        })
    }

    /// Makes a new key pair in the token the URI names, labelled and identified as it says
    /// (`object`, `id`), private, sensitive and never extractable; then opens it. Refuses when
    /// a private key already matches.
    pub fn generate(uri: &Pkcs11Uri, algorithm: Algorithm) -> Result<Self, KeyError> {
        let module = Module::load(&uri.module)?;
        let pin = read_pin(uri)?;
        let device = |e: CkError| KeyError::Device {
            uri: uri.to_string(),
            why: describe(&e),
        };
        {
            let _state = module.read();
            let slot = find_slot(&module.context, uri).map_err(|why| KeyError::NoToken {
                uri: uri.to_string(),
                why,
            })?;
            let session = module.context.open_rw_session(slot).map_err(device)?;
            login(&session, &pin).map_err(|e| login_error(uri, &e))?;
            if !session.find_objects(&key_template(uri)).map_err(device)?.is_empty() {
                return Err(KeyError::Exists { uri: uri.to_string() });
            }
            let mut common = vec![Attribute::Token(true)];
            if let Some(label) = &uri.object {
                common.push(Attribute::Label(label.as_bytes().to_vec()));
            }
            if let Some(id) = &uri.id {
                common.push(Attribute::Id(id.clone()));
            }
            let (mechanism, mut public) = match algorithm {
                // RFC 8410's curve name, as PKCS#11 3.0 allows and SoftHSM2 reads it.
                Algorithm::Ed25519 => (
                    Mechanism::EccEdwardsKeyPairGen,
                    vec![Attribute::EcParams(b"\x13\x0cedwards25519".to_vec())],
                ),
                Algorithm::EcdsaP256 => (
                    Mechanism::EccKeyPairGen,
                    vec![Attribute::EcParams(P256_PARAMS.to_vec())],
                ),
                Algorithm::Rsa => (
                    Mechanism::RsaPkcsKeyPairGen,
                    vec![
                        Attribute::ModulusBits(3072.into()),
                        Attribute::PublicExponent(vec![1, 0, 1]),
                    ],
                ),
                other => {
                    return Err(KeyError::Unsupported {
                        uri: uri.to_string(),
                        why: format!("{other:?} keys are not made through PKCS#11 here (SM2 needs a GM/T 0018 device)"),
                    })
                }
            };
            public.extend(common.iter().cloned());
            public.extend([Attribute::Verify(true), Attribute::Private(false)]);
            let mut private = common;
            private.extend([
                Attribute::Sign(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
            ]);
            session
                .generate_key_pair(&mechanism, &public, &private)
                .map_err(device)?;
        }
        Self::open(uri)
    }

    /// The URI the key was opened by.
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    fn sign_once(&self, generation: u64, data: &[u8]) -> Result<Vec<u8>, Failure> {
        let (session, key) = self
            .sessions
            .pool
            .check_out(generation, || self.sessions.open(&self.module.context))?;
        let mechanism = match self.public.algorithm() {
            Algorithm::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            Algorithm::EcdsaP256 => Mechanism::Ecdsa,
            _ => Mechanism::Sha256RsaPkcs,
        };
        match session.sign(&mechanism, key, data) {
            Ok(signature) => {
                self.sessions.pool.check_in(generation, Some((session, key)));
                Ok(signature)
            }
            Err(e) => {
                let failure = classify(&e);
                // A session that failed for the device's sake is not reused.
                let keep = matches!(failure, Failure::Refused(_) | Failure::Login(_)).then_some((session, key));
                self.sessions.pool.check_in(generation, keep);
                Err(failure)
            }
        }
    }
}

impl Signer for Pkcs11Key {
    fn algorithm(&self) -> Algorithm {
        self.public.algorithm()
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        // CKM_ECDSA signs a digest; the other mechanisms hash (or not) themselves.
        let digest;
        let data = match self.public.algorithm() {
            Algorithm::EcdsaP256 => {
                digest = zhengyin_crypto::hash::sha256(message);
                &digest[..]
            }
            _ => message,
        };
        for attempt in 0..2 {
            let state = self.module.read();
            let generation = state.generation;
            let outcome = self.sign_once(generation, data);
            drop(state);
            match outcome {
                Ok(signature) => {
                    self.public.verify(self.scheme(), message, &signature).map_err(|_| {
                        CryptoError::Unavailable(format!("{}: the device's signature does not verify", self.uri))
                    })?;
                    return Ok(signature);
                }
                Err(Failure::Lost(_)) if attempt == 0 => self.module.reset(generation),
                Err(Failure::Lost(why) | Failure::Login(why) | Failure::Refused(why)) => {
                    return Err(CryptoError::Unavailable(format!("{}: {why}", self.uri)))
                }
            }
        }
        Err(CryptoError::Unavailable(format!("{}: no session", self.uri)))
    }
}

impl Module {
    /// The module a URI names, loaded and initialised on first use.
    fn load(spec: &ModuleSpec) -> Result<Arc<Self>, KeyError> {
        static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
        let path = match spec {
            ModuleSpec::Path(path) => path.clone(),
            ModuleSpec::Name(name) => PathBuf::from(format!("lib{name}.so")),
        };
        let mut modules = MODULES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(module) = modules.get(&path) {
            return Ok(module.clone());
        }
        let failed = |why: String| KeyError::Module {
            kind: "PKCS#11 module",
            module: path.display().to_string(),
            why,
        };
        let context = Pkcs11::new(&path).map_err(|e| failed(e.to_string()))?;
        initialize(&context).map_err(|e| failed(describe(&e)))?;
        let module = Arc::new(Module {
            context,
            state: RwLock::new(ModuleState {
                generation: 0,
                last_reset: None,
                pools: Vec::new(),
            }),
        });
        modules.insert(path, module.clone());
        Ok(module)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ModuleState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, ModuleState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the module afresh after `seen` failed: closes every pooled session, finalises and
    /// initialises it. Does nothing if another thread already did since `seen`, or if the last
    /// time was under [`RESET_INTERVAL`] ago.
    fn reset(&self, seen: u64) {
        let mut state = self.write();
        if state.generation != seen || state.last_reset.is_some_and(|t| t.elapsed() < RESET_INTERVAL) {
            return;
        }
        state.pools.retain(|pool| pool.strong_count() > 0);
        for sessions in state.pools.iter().filter_map(Weak::upgrade) {
            sessions.pool.clear();
        }
        // Errors are expected here (the device is in trouble); the next signing reports them.
        let _ = self.context.clone().finalize();
        let _ = initialize(&self.context);
        state.generation += 1;
        state.last_reset = Some(Instant::now());
    }
}

impl Sessions {
    /// A new logged-in session and the key's handle in it.
    fn open(&self, context: &Pkcs11) -> Result<(Session, ObjectHandle), Failure> {
        let slot = find_slot(context, &self.uri).map_err(Failure::Lost)?;
        let session = context.open_ro_session(slot).map_err(|e| classify(&e))?;
        login(&session, &self.pin).map_err(|e| match e {
            CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLocked | RvError::PinExpired, _) => {
                Failure::Login(describe(&e))
            }
            other => classify(&other),
        })?;
        let keys = session
            .find_objects(&key_template(&self.uri))
            .map_err(|e| classify(&e))?;
        match keys.as_slice() {
            [key] => Ok((session, *key)),
            [] => Err(Failure::Refused("no private key matches".to_owned())),
            _ => Err(Failure::Refused(format!(
                "{} private keys match; name one by object= and id=",
                keys.len()
            ))),
        }
    }

    /// The start-up error for a failure to open the first session.
    fn start_error(&self, failure: Failure) -> KeyError {
        let uri = self.uri.to_string();
        match failure {
            Failure::Lost(why) => KeyError::NoToken { uri, why },
            Failure::Login(why) => KeyError::Pin { uri, why },
            Failure::Refused(why) => KeyError::NoKey { uri, why },
        }
    }
}

fn initialize(context: &Pkcs11) -> Result<(), CkError> {
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

fn login(session: &Session, pin: &str) -> Result<(), CkError> {
    match session.login(UserType::User, Some(&AuthPin::new(pin.into()))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(e),
    }
}

fn login_error(uri: &Pkcs11Uri, e: &CkError) -> KeyError {
    KeyError::Pin {
        uri: uri.to_string(),
        why: describe(e),
    }
}

/// Errors that mean the device, its sessions or the login went away: worth starting afresh.
fn classify(e: &CkError) -> Failure {
    match e {
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::ObjectHandleInvalid
            | RvError::KeyHandleInvalid
            | RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::UserNotLoggedIn
            | RvError::CryptokiNotInitialized
            | RvError::SlotIdInvalid
            | RvError::GeneralError,
            _,
        ) => Failure::Lost(describe(e)),
        other => Failure::Refused(describe(other)),
    }
}

/// `C_Sign: SessionHandleInvalid` — the function and the return value's name, without
/// cryptoki's paragraph-long explanations.
fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("C_{function:?}: {rv:?}"),
        other => other.to_string(),
    }
}

/// The one slot whose token matches the URI's token attributes.
fn find_slot(context: &Pkcs11, uri: &Pkcs11Uri) -> Result<Slot, String> {
    let slots = context.get_slots_with_token().map_err(|e| describe(&e))?;
    let mut matching = Vec::new();
    for slot in slots {
        if uri.slot_id.is_some_and(|id| id != slot.id()) {
            continue;
        }
        let Ok(info) = context.get_token_info(slot) else {
            continue;
        };
        let wanted = [
            (&uri.token, info.label()),
            (&uri.serial, info.serial_number()),
            (&uri.manufacturer, info.manufacturer_id()),
            (&uri.model, info.model()),
        ];
        if info.token_initialized()
            && wanted
                .iter()
                .all(|(want, have)| want.as_deref().is_none_or(|w| w == *have))
        {
            matching.push(slot);
        }
    }
    match matching.as_slice() {
        [slot] => Ok(*slot),
        [] => Err("no token matches (is the device present, and the token initialised?)".to_owned()),
        _ => Err(format!(
            "{} tokens match; name one by token= or serial=",
            matching.len()
        )),
    }
}

/// The template that finds the URI's private key.
fn key_template(uri: &Pkcs11Uri) -> Vec<Attribute> {
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(label) = &uri.object {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        template.push(Attribute::Id(id.clone()));
    }
    template
}

fn read_pin(uri: &Pkcs11Uri) -> Result<Zeroizing<String>, KeyError> {
    let failed = |why: String| KeyError::Pin {
        uri: uri.to_string(),
        why,
    };
    uri.pin
        .as_ref()
        .ok_or_else(|| failed("no pin-source (pin-source=file:PATH or env:NAME)".to_owned()))?
        .read()
        .map_err(failed)
}

/// DER of the P-256 curve's OID, as `CKA_EC_PARAMS` holds it.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const SM2_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d];
const ED25519_PARAMS: [&[u8]; 3] = [
    &[0x06, 0x03, 0x2b, 0x65, 0x70],
    b"\x13\x0cedwards25519",
    b"\x13\x0aEd25519",
];

/// The key's public half: RSA from the private key's own attributes, elliptic-curve keys from
/// the public key object beside it (same id, else same label).
fn public_key(session: &Session, private: ObjectHandle) -> Result<PublicKey, String> {
    let describe_attr = |e: CkError| describe(&e);
    let attributes = session
        .get_attributes(
            private,
            &[AttributeType::KeyType, AttributeType::Id, AttributeType::Label],
        )
        .map_err(describe_attr)?;
    let mut key_type = None;
    let mut twin = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Id(id) if !id.is_empty() => twin.push(Attribute::Id(id)),
            Attribute::Label(label) if twin.len() == 1 && !label.is_empty() => twin.push(Attribute::Label(label)),
            _ => {}
        }
    }
    match key_type {
        Some(KeyType::RSA) => {
            match byte_attributes(
                session,
                private,
                [AttributeType::Modulus, AttributeType::PublicExponent],
            )? {
                [Some(n), Some(e)] => PublicKey::from_rsa_components(&n, &e).map_err(|e| e.to_string()),
                _ => Err("the RSA key does not show its modulus and exponent".to_owned()),
            }
        }
        Some(KeyType::EC | KeyType::EC_EDWARDS) => {
            let public = match session.find_objects(&twin).map_err(describe_attr)?.as_slice() {
                [public] => *public,
                [] => return Err("no public key object beside the private key (same id or label)".to_owned()),
                _ => return Err("several public key objects match the private key".to_owned()),
            };
            let [Some(params), Some(point)] =
                byte_attributes(session, public, [AttributeType::EcParams, AttributeType::EcPoint])?
            else {
                return Err("the public key shows no curve or point".to_owned());
            };
            let algorithm = if params == P256_PARAMS {
                Algorithm::EcdsaP256
            } else if ED25519_PARAMS.contains(&params.as_slice()) {
                Algorithm::Ed25519
            } else if params == SM2_PARAMS {
                return Err("SM2 keys sign through a GM/T 0018 device, not PKCS#11".to_owned());
            } else {
                return Err(format!("unsupported curve (CKA_EC_PARAMS {params:02x?})"));
            };
            PublicKey::from_ec_point(algorithm, unwrap_octet_string(&point)).map_err(|e| e.to_string())
        }
        other => Err(format!(
            "unsupported key type {other:?} (Ed25519, P-256 and RSA sign here)"
        )),
    }
}

/// Two byte-string attributes of an object, each `None` if the device does not show it.
fn byte_attributes(
    session: &Session,
    object: ObjectHandle,
    types: [AttributeType; 2],
) -> Result<[Option<Vec<u8>>; 2], String> {
    let mut values = [None, None];
    for attribute in session.get_attributes(object, &types).map_err(|e| describe(&e))? {
        let kind = attribute.attribute_type();
        let (Attribute::Modulus(bytes)
        | Attribute::PublicExponent(bytes)
        | Attribute::EcParams(bytes)
        | Attribute::EcPoint(bytes)) = attribute
        else {
            continue;
        };
        if let Some(slot) = types.iter().position(|t| *t == kind) {
            values[slot] = Some(bytes);
        }
    }
    Ok(values)
}

/// `CKA_EC_POINT` is a DER OCTET STRING by the standard; some devices give the bare point.
fn unwrap_octet_string(point: &[u8]) -> &[u8] {
    match point {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && matches!(rest.len(), 32 | 65) => rest,
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        bare => bare,
    }
}
