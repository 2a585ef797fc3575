//! What a store written by an earlier build (before licence-type versions and licence numbers)
//! must hold once opened by this one. Each backend's test writes [`EarlierData`] its own old way,
//! opens the store, and calls [`earlier_data_indexed`].

use zhengyin_model::{LicenceId, TypeCode, Uscc, Version};

use super::{ensure, ok, Outcome};
use crate::Store;

/// A licence type as stored before types had versions, and three licences, two of them carrying
/// the same number.
pub struct EarlierData {
    /// The type's code.
    pub type_code: TypeCode,
    /// The type's stored record (JSON, no `version`).
    pub type_record: &'static str,
    /// The licences and the numbers inside their signed form.
    pub licences: Vec<(LicenceId, &'static str)>,
}

impl EarlierData {
    /// The sample.
    pub fn sample() -> Result<EarlierData, String> {
        let type_code = TypeCode::parse("11100000000013338W032").map_err(|e| e.to_string())?;
        let issuer = Uscc::parse("11220000013544541J").map_err(|e| e.to_string())?;
        let id = |serial: &str| {
            LicenceId::new(type_code.clone(), issuer.clone(), serial, Version::FIRST).map_err(|e| e.to_string())
        };
        Ok(EarlierData {
            licences: vec![(id("OLD1")?, "N-1"), (id("OLD2")?, "N-1"), (id("OLD3")?, "N-2")],
            type_code,
            type_record: r#"{"code":"11100000000013338W032","name":"营业执照","defining_authority":"11100000000013338W","holder_code_types":["001"],"face_schema":[]}"#,
        })
    }

    /// A licence's signed form, as far as indexing reads it.
    pub fn signed(number: &str) -> String {
        format!(r#"{{"number":"{number}"}}"#)
    }
}

/// The type became its version 1, and each number is reserved for the first lineage (in
/// identifier order) that carried it.
pub fn earlier_data_indexed(store: &dyn Store, data: &EarlierData) -> Outcome {
    let versions = ok(store.licence_type_versions(&data.type_code), "versions")?;
    ensure(
        versions.len() == 1 && versions[0].version == 1 && versions[0].name == "营业执照",
        "an earlier type is kept as its version 1",
    )?;
    let [(a, _), (b, _), (c, _)] = &data.licences[..] else {
        return Err("the sample has three licences".to_owned());
    };
    let first = if a.as_str() < b.as_str() { a } else { b };
    ensure(
        ok(store.number_holder(a, "N-1"), "N-1")? == Some(first.lineage())
            && ok(store.number_holder(c, "N-2"), "N-2")? == Some(c.lineage())
            && ok(store.number_holder(c, "N-3"), "N-3")?.is_none(),
        "the numbers of earlier licences are reserved, the first lineage keeping a shared one",
    )
}
