//! Enrollment (DESIGN §6.13): on start the agent registers with the coordinator (identity
//! from its certificate, its address, version and state summary) and receives the address
//! book. It retries until the coordinator answers; unlock does not wait for it.

use std::time::Duration;

use slog::{Logger, info, warn};
use tq_protocol::Peer;
use tq_wire::client::{ClientLimits, channel};
use tq_wire::convert::address_book_from_pb;
use tq_wire::convert::report_to_pb;
use tq_wire::pb::{self, coordinator_client::CoordinatorClient};
use tq_wire::tls::TlsMaterial;

use crate::actor::AgentHandle;

pub(crate) async fn enroll(
    handle: AgentHandle,
    tls: TlsMaterial,
    coordinator: String,
    advertise: String,
    log: Logger,
) {
    let limits = ClientLimits::default();
    let mut backoff = Duration::from_millis(200);
    let mut warned = false;
    loop {
        match try_enroll(&handle, &tls, &coordinator, &advertise, &limits).await {
            Ok(n) => {
                info!(log, "enrolled with the coordinator"; "coordinator" => &coordinator, "address_book" => n);
                return;
            }
            Err(e) => {
                if !warned || backoff >= Duration::from_secs(5) {
                    warn!(log, "cannot enroll with the coordinator yet: retrying"; "coordinator" => &coordinator, "error" => %e);
                    warned = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn try_enroll(
    handle: &AgentHandle,
    tls: &TlsMaterial,
    coordinator: &str,
    advertise: &str,
    limits: &ClientLimits,
) -> Result<usize, String> {
    let ch = channel(tls, Peer::Coordinator, coordinator, limits)
        .map_err(|e| e.message().to_string())?;
    let summary = handle.summary().await.map_err(|e| e.to_string())?;
    let req = pb::EnrollRequest {
        address: advertise.to_string(),
        summary: Some(report_to_pb(&summary, tq_wire::VERSION)),
    };
    let book = CoordinatorClient::new(ch)
        .enroll(req)
        .await
        .map_err(|s| format!("{}: {}", s.code(), s.message()))?
        .into_inner();
    let book = address_book_from_pb(&book).map_err(|e| e.message().to_string())?;
    let n = book.len();
    handle.enrolled_book(book).await.map_err(|e| e.to_string())?;
    Ok(n)
}
