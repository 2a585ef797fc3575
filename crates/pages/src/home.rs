//! `/`: what this node is, what it holds, and where each audience goes.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use crate::session::{Me, Visitor};
use crate::Shared;

/// A licence type as the landing page lists it.
struct TypeRow {
    name: String,
    code: String,
    authority: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    me: Option<Me>,
    /// The log's origin (the node's name in its checkpoints), if it has published one.
    origin: Option<String>,
    /// Entries in the signature log.
    log_size: u64,
    authorities: usize,
    types: Vec<TypeRow>,
}

pub(crate) async fn page(State(pages): State<Shared>, visitor: Visitor) -> Response {
    let engine = &pages.engine;
    let checkpoint = engine.latest_checkpoint().ok().flatten();
    let authorities = engine.authorities();
    let name_of = |uscc: &str| {
        authorities
            .iter()
            .find(|a| a.uscc.as_str() == uscc)
            .map_or_else(|| uscc.to_owned(), |a| a.name.clone())
    };
    let mut types: Vec<TypeRow> = engine
        .licence_types()
        .into_iter()
        .map(|t| TypeRow {
            authority: name_of(t.defining_authority.as_str()),
            code: t.code.as_str().to_owned(),
            name: t.name,
        })
        .collect();
    types.sort_by(|a, b| a.code.cmp(&b.code));
    super::page(&Home {
        me: visitor.me(),
        origin: checkpoint
            .as_ref()
            .and_then(|(_, note)| note.lines().next().map(str::to_owned)),
        log_size: checkpoint.map_or(0, |(size, _)| size.0),
        authorities: authorities.len(),
        types,
    })
}
