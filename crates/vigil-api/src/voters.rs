//! `/v1/voters`: the Raft group's voters and learners, and changing them at run time (see
//! `vigil_cluster::raft::voters`). A change runs on the leader: any other voter passes it on, a
//! node that is not a voter passes it to a voter, each hop given the time a newcomer has to catch
//! up.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use vigil_cluster::raft::{MembershipError, VoterSet, WriteError};

use crate::error::ApiError;
use crate::forward::{self, Incoming};
use crate::{auth, wire, Api};

/// How long a new voter has to hold the log before it is promoted; the addition fails (and is
/// undone) past it.
pub const CATCH_UP: Duration = Duration::from_secs(20);
/// How long a hop waits for the node it passed a change to: the catch-up and the commits.
const CHANGE_WITHIN: Duration = Duration::from_secs(25);

/// `/v1/voters` and `/v1/voters/{node}`, on a node in a cluster.
pub(crate) fn routes(api: &Api) -> Router {
    if api.cluster.is_none() {
        return Router::new();
    }
    Router::new()
        .route("/v1/voters", get(list))
        .route(
            "/v1/voters/{node}",
            auth::guarded(&api.token, post(add).delete(remove)),
        )
        .with_state(api.clone())
}

/// `GET /v1/voters`: the group as the voter asked sees it.
#[cfg_attr(feature = "openapi", utoipa::path(get, path = "/v1/voters", tag = "cluster",
    responses(
        (status = 200, description = "Voters and learners; on the leader with how much of the log each holds", body = wire::Voters),
        (status = 503, description = "This node is not a voter and no voter answered", body = wire::ErrorBody),
    )))]
pub async fn list(State(api): State<Api>, request: Incoming) -> Response {
    let Some(leadership) = &api.leadership else {
        return forward::to_a_voter(&request, api.cluster.as_ref()).await;
    };
    Json(wire::Voters::of(leadership.voters(), node_of(&api))).into_response()
}

/// `POST /v1/voters/{node}`: adds a voter.
#[cfg_attr(feature = "openapi", utoipa::path(post, path = "/v1/voters/{node}", tag = "cluster",
    params(("node" = String, Path, description = "The node id of a member started with role = \"voter\"")),
    security(("token" = [])),
    responses(
        (status = 200, description = "A voter now (or already): the group after the change", body = wire::Voters),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 409, description = "Not a live member running Raft, a Raft id clash, another change under way, or it did not catch up in time (then it was taken out again)", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn add(State(api): State<Api>, Path(node): Path<String>, request: Incoming) -> Response {
    let Some(leadership) = &api.leadership else {
        return forward::to_a_voter_within(&request, api.cluster.as_ref(), CHANGE_WITHIN).await;
    };
    answer(&api, leadership.add_voter(&node, CATCH_UP).await, &request).await
}

/// `DELETE /v1/voters/{node}`: removes a voter (or a learner), dead or alive.
#[cfg_attr(feature = "openapi", utoipa::path(delete, path = "/v1/voters/{node}", tag = "cluster",
    params(("node" = String, Path, description = "The voter's node id")),
    security(("token" = [])),
    responses(
        (status = 200, description = "Removed: the group after the change", body = wire::Voters),
        (status = 401, description = "No or a wrong token", body = wire::ErrorBody),
        (status = 404, description = "Not in the group", body = wire::ErrorBody),
        (status = 409, description = "The only voter, or another change under way", body = wire::ErrorBody),
        (status = 503, description = "No quorum", body = wire::ErrorBody),
    )))]
pub async fn remove(
    State(api): State<Api>,
    Path(node): Path<String>,
    request: Incoming,
) -> Response {
    let Some(leadership) = &api.leadership else {
        return forward::to_a_voter_within(&request, api.cluster.as_ref(), CHANGE_WITHIN).await;
    };
    answer(&api, leadership.remove_voter(&node).await, &request).await
}

fn node_of(api: &Api) -> String {
    api.engine.snapshot().node_id().to_owned()
}

/// The answer to a change: the group after it, the leader's answer when this node does not
/// lead, or the reason it did not happen.
async fn answer(
    api: &Api,
    changed: Result<VoterSet, MembershipError>,
    request: &Incoming,
) -> Response {
    let error = match changed {
        Ok(set) => return Json(wire::Voters::of(set, node_of(api))).into_response(),
        Err(error) => error,
    };
    let status = match &error {
        MembershipError::Write(WriteError::NotLeader {
            leader: Some(leader),
            api_address: Some(addr),
        }) => {
            let why = format!("the leader is {leader}");
            return forward::forward_within(request, *addr, &why, CHANGE_WITHIN).await;
        }
        MembershipError::Write(_) => StatusCode::SERVICE_UNAVAILABLE,
        MembershipError::NotAVoter(_) => StatusCode::NOT_FOUND,
        MembershipError::NotRunningRaft(_)
        | MembershipError::IdClash { .. }
        | MembershipError::LastVoter(_)
        | MembershipError::CatchUp { .. }
        | MembershipError::Refused(_) => StatusCode::CONFLICT,
    };
    let message = match error {
        MembershipError::Write(e @ WriteError::NotLeader { .. }) => format!("no quorum: {e}"),
        e => e.to_string(),
    };
    ApiError::new(status, message).into_response()
}
