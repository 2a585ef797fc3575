//! Licence files over HTTP: `GET /v1/licences/{id}/file` gives a licence version's sealed OFD
//! file to its issuer (and operators), to its holder, and to a using department under a grant,
//! which names its service item and use cause in the query and is recorded as a use.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use zhengyin_engine::UseContext;

use crate::auth::{Caller, Role};
use crate::handlers::{licence_id, query, QueryResult};
use crate::problem::Problem;
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileQuery {
    #[serde(default)]
    service_item: Option<String>,
    #[serde(default)]
    use_cause: Option<String>,
    #[serde(default)]
    authorisation: Option<String>,
}

pub(crate) async fn get_licence_file(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: QueryResult<FileQuery>,
) -> Result<Response, Problem> {
    let id = licence_id(&id)?;
    let q = query(q)?;
    match &caller.role {
        Role::Verifier { department } => {
            let (Some(service_item), Some(use_cause)) = (q.service_item, q.use_cause) else {
                return Err(Problem::invalid(
                    "a department names service_item and use_cause in the query: the use is recorded",
                ));
            };
            let ctx = UseContext {
                service_item,
                use_cause,
                authorisation: q.authorisation,
            };
            s.engine
                .fetch_for_use(department, id.type_code(), id.as_str(), &ctx)
                .await?;
        }
        Role::Holder { holder } => s.engine.check_holds(holder, &id)?,
        _ => caller.may_read(id.issuer())?,
    }
    let file = s.engine.licence_file(&id).await?;
    let disposition = format!("attachment; filename=\"{}.ofd\"", id.as_str());
    Ok((
        [
            (header::CONTENT_TYPE, "application/ofd".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        file,
    )
        .into_response())
}
