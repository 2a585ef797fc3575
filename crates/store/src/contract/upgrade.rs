//! What a store written by an earlier build (before licence-type versions, licence numbers and
//! objection and incident listings) must hold once opened by this one. Each backend's test
//! writes [`EarlierData`] its own old way, opens the store, and calls [`earlier_data_indexed`].

use time::macros::datetime;
use zhengyin_model::objection::{Action, Calendar, Channel, ObjectionKind, Workflow};
use zhengyin_model::{IncidentKind, LicenceId, Objection, Resolution, SyncIncident, TypeCode, Uscc, Version};

use super::{ensure, ok, Outcome};
use crate::{ObjectionPage, ObjectionScope, Store};

/// A licence type as stored before types had versions, three licences, two of them carrying
/// the same number, two objections to the first (one open, one withdrawn), and two sync
/// incidents (one resolved, one open).
pub struct EarlierData {
    /// The type's code.
    pub type_code: TypeCode,
    /// The type's stored record (JSON, no `version`).
    pub type_record: &'static str,
    /// The licences and the numbers inside their signed form.
    pub licences: Vec<(LicenceId, &'static str)>,
    /// The objections, each stored as its JSON record with its licence index only.
    pub objections: Vec<Objection>,
    /// Sync incidents, each stored as its JSON record only: one open, one resolved.
    pub incidents: Vec<SyncIncident>,
}

impl EarlierData {
    /// The sample.
    pub fn sample() -> Result<EarlierData, String> {
        let type_code = TypeCode::parse("11100000000013338W032").map_err(|e| e.to_string())?;
        let issuer = Uscc::parse("11220000013544541J").map_err(|e| e.to_string())?;
        let id = |serial: &str| {
            LicenceId::new(type_code.clone(), issuer.clone(), serial, Version::FIRST).map_err(|e| e.to_string())
        };
        let disputed = id("OLD1")?;
        let objection = |serial: &str, objector: &str| Objection {
            id: serial.to_owned(),
            licence: disputed.clone(),
            fields: Vec::new(),
            kind: ObjectionKind::Inaccurate,
            statement: "earlier".to_owned(),
            evidence: Vec::new(),
            objector: objector.to_owned(),
            channel: Channel::Platform,
            workflow: Workflow::new(datetime!(2024-01-02 0:00 UTC), 15),
        };
        let open = objection("OB0000000000000001", "department:A");
        let mut withdrawn = objection("OB0000000000000002", "department:B");
        withdrawn
            .workflow
            .apply(
                Action::Withdraw,
                "department:B",
                "",
                datetime!(2024-01-02 1:00 UTC),
                &Calendar::default(),
            )
            .map_err(|e| e.to_string())?;
        let incident = |id: &str, resolved: Option<Resolution>| SyncIncident {
            id: id.to_owned(),
            origin: "city.example/log".to_owned(),
            kind: IncidentKind::Fork,
            detail: "earlier".to_owned(),
            evidence: Vec::new(),
            detected: datetime!(2024-01-02 0:00 UTC),
            conflict: None,
            resolved,
        };
        let resolution = Resolution {
            at: datetime!(2024-01-03 0:00 UTC),
            note: "checked".to_owned(),
            decision: None,
        };
        Ok(EarlierData {
            objections: vec![open, withdrawn],
            incidents: vec![
                incident("IN0000000000000001", Some(resolution)),
                incident("IN0000000000000002", None),
            ],
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
    )?;
    let [open, withdrawn] = &data.objections[..] else {
        return Err("the sample has two objections".to_owned());
    };
    let listed = |scope: ObjectionScope, open_only: bool| {
        let page = ObjectionPage {
            scope,
            open_only,
            ..ObjectionPage::default()
        };
        ok(store.objections_page(&page), "objections").map(|list| list.into_iter().map(|o| o.id).collect::<Vec<_>>())
    };
    let issuer = ObjectionScope::Issuer(open.licence.issuer().clone());
    ensure(
        listed(ObjectionScope::All, true)? == [open.id.clone()]
            && listed(ObjectionScope::Objector(withdrawn.objector.clone()), false)? == [withdrawn.id.clone()]
            && listed(issuer, false)? == [open.id.clone(), withdrawn.id.clone()],
        "earlier objections are listed by objector, by issuer and open ones",
    )?;
    let open_incidents = ok(store.incidents_page(true, None, 10), "open incidents")?;
    ensure(
        open_incidents == data.incidents[1..] && ok(store.incidents(), "incidents")? == data.incidents,
        "earlier incidents are kept, the unresolved ones listed as open",
    )
}
