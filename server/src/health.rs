//! Health that tells the truth about the database: a background probe runs
//! `SELECT 1` on its own connection and sets every service SERVING or
//! NOT_SERVING by the answer. A failed probe also tells the store, which
//! then drops the pooled connections that the outage killed and refuses
//! requests at once until the probe answers again.
//!
//! On shutdown, health turns NOT_SERVING before anything else stops, so a
//! load balancer stops sending new work while the work in flight finishes,
//! and every `Watch` stream gets that last status and ends: an open watch
//! must not keep a draining server alive.

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService};

use crate::store::Store;

/// The services whose health follows the database, with "" for the whole server.
pub const SERVICES: [&str; 5] = [
    "",
    "fathom.v1.Collections",
    "fathom.v1.Documents",
    "fathom.v1.Search",
    "fathom.v1.Keys",
];

/// The health service of a running server and the probe that keeps it true.
pub(crate) struct ServerHealth {
    /// Cancelled to start draining; the probe then reports NOT_SERVING and ends.
    draining: CancellationToken,
    probe: JoinHandle<()>,
}

impl ServerHealth {
    /// Starts the probe, on a connection of its own to `database`, every
    /// `interval`; returns the gRPC health service it keeps up to date.
    pub(crate) async fn start(
        database: PgConnectOptions,
        store: Store,
        interval: Duration,
    ) -> (Self, HealthServer<DrainingHealth>) {
        let reporter = HealthReporter::new();
        // Until the first probe answers, nothing is known to work.
        for service in SERVICES {
            reporter.set_service_status(service, ServingStatus::NotServing).await;
        }
        let draining = CancellationToken::new();
        let watches_end = CancellationToken::new();
        let service = DrainingHealth {
            inner: HealthService::from_health_reporter(reporter.clone()),
            watches_end: watches_end.clone(),
        };
        // Named, so `fathom serve` can tell a cluster some fathom is serving from.
        let options = database.application_name("fathom-health");
        let probe = tokio::spawn(probe_database(
            options,
            reporter,
            store,
            interval,
            draining.clone(),
            watches_end,
        ));
        (Self { draining, probe }, HealthServer::new(service))
    }

    /// Turns every service NOT_SERVING for good and ends every `Watch`
    /// (after it has sent that status); returns once both are done.
    pub(crate) async fn drain(self) {
        self.draining.cancel();
        let _ = self.probe.await;
    }
}

/// Probes every `interval` until `draining` is cancelled; then reports
/// NOT_SERVING and cancels `watches_end`. A probe that takes longer than
/// `interval` counts as a failure, so a hung database turns NOT_SERVING
/// as quickly as a stopped one.
async fn probe_database(
    options: PgConnectOptions,
    reporter: HealthReporter,
    store: Store,
    interval: Duration,
    draining: CancellationToken,
    watches_end: CancellationToken,
) {
    let mut connection: Option<PgConnection> = None;
    let mut last: Option<ServingStatus> = None;
    let report = async |status: ServingStatus| {
        for service in SERVICES {
            reporter.set_service_status(service, status).await;
        }
    };
    loop {
        let probe = tokio::time::timeout(interval, async {
            if connection.is_none() {
                connection = Some(PgConnection::connect_with(&options).await?);
            }
            let conn = connection.as_mut().expect("connected above");
            sqlx::query("SELECT 1").execute(conn).await.map(|_| ())
        });
        let healthy = tokio::select! {
            () = draining.cancelled() => break,
            answer = probe => answer.is_ok_and(|r| r.is_ok()),
        };
        crate::metrics::postgres_up(healthy);
        if healthy {
            store.record_recovery();
        } else {
            connection = None;
            store.record_outage();
        }
        let status = if healthy {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            tracing::info!(?status, "database health changed");
            report(status).await;
            last = Some(status);
        }
        tokio::select! {
            () = draining.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
    }
    tracing::info!("shutting down: health is NOT_SERVING");
    report(ServingStatus::NotServing).await;
    watches_end.cancel();
}

/// tonic-health's service, but with `Watch` streams that end on shutdown.
pub(crate) struct DrainingHealth {
    inner: HealthService,
    watches_end: CancellationToken,
}

/// A `Watch` response stream.
type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for DrainingHealth {
    type WatchStream = WatchStream;

    async fn check(&self, request: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    async fn watch(&self, request: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let statuses = self.inner.watch(request).await?.into_inner();
        let watch = Watch {
            statuses: Box::pin(statuses),
            ended: Box::pin(self.watches_end.clone().cancelled_owned()),
            last_sent: None,
        };
        Ok(Response::new(Box::pin(futures::stream::unfold(watch, Watch::next))))
    }
}

/// One `Watch` in progress: the statuses until shutdown, then NOT_SERVING
/// (unless that was the last one sent), then the end.
struct Watch {
    statuses: Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>,
    ended: Pin<Box<WaitForCancellationFutureOwned>>,
    last_sent: Option<i32>,
}

impl Watch {
    async fn next(mut self) -> Option<(Result<HealthCheckResponse, Status>, Self)> {
        let not_serving = WireStatus::NotServing as i32;
        tokio::select! {
            // A status reported before the shutdown is sent before it.
            biased;
            status = self.statuses.next() => {
                let status = status?;
                self.last_sent = status.as_ref().ok().map(|s| s.status);
                Some((status, self))
            }
            () = &mut self.ended => (self.last_sent != Some(not_serving)).then(|| {
                self.last_sent = Some(not_serving);
                self.statuses = Box::pin(futures::stream::empty());
                (Ok(HealthCheckResponse { status: not_serving }), self)
            }),
        }
    }
}
