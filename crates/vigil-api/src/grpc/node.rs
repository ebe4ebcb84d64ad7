//! `vigil.v1.Node/HealthCheck`: the node's health in one call, for monitors that ask a peer
//! "are you healthy, who are you, what is your role".

use std::time::{SystemTime, UNIX_EPOCH};

use tonic::{Request, Response, Status as RpcStatus};
use vigil_health::Engine;

use super::pb::node_server::Node;
use super::pb::{HealthRequest, HealthResponse};

/// The node service over one engine.
pub(crate) struct NodeService {
    pub(crate) engine: Engine,
    pub(crate) role: String,
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn health_check(
        &self,
        request: Request<HealthRequest>,
    ) -> Result<Response<HealthResponse>, RpcStatus> {
        let asked = request.into_inner();
        tracing::debug!(requester = %asked.requester_id, "HealthCheck");
        let snapshot = self.engine.snapshot();
        let status = snapshot.status();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        Ok(Response::new(HealthResponse {
            healthy: status.is_ready(),
            status: status.as_str().to_owned(),
            timestamp,
            process_id: snapshot.node_id().to_owned(),
            role: self.role.clone(),
        }))
    }
}
