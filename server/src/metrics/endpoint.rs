//! `GET /metrics`: the process's metrics in Prometheus text format, as
//! rendered by `metrics-exporter-prometheus` (and the `process_*` series of
//! [`super::process`]), on a listener of its own.
//!
//! The exporter's built-in listener cannot report the port it bound, so
//! servers on port 0 (tests) could not be scraped; this small HTTP/1.1
//! listener serves the same rendered text and knows its address.
//!
//! The `metrics` recorder is process-global: the first server that asks for
//! it installs it, and every later one (tests start many in one process)
//! shares it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Histogram buckets of every `*_seconds` series, in seconds: from a
/// cached catalog lookup (sub-millisecond) to a statement near its timeout.
pub const SECONDS_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

/// How often histograms are drained into their buckets between scrapes, so
/// their samples take bounded memory under load.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed on first use.
pub fn prometheus_handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    // Two servers starting at once may both get here; only one recorder can
    // be installed, so the loser builds one it never installs and uses the winner's.
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    match metrics::set_global_recorder(recorder) {
        Ok(()) => Ok(HANDLE.get_or_init(|| handle).clone()),
        Err(_) => HANDLE.get().cloned().ok_or_else(|| {
            anyhow::anyhow!("another metrics recorder is installed in this process; cannot serve /metrics")
        }),
    }
}

/// A bound `/metrics` listener.
pub struct MetricsEndpoint {
    listener: TcpListener,
    handle: PrometheusHandle,
}

impl MetricsEndpoint {
    /// Installs the recorder (once per process) and binds `addr`; port 0 picks a free port.
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let handle = prometheus_handle()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot serve metrics on {addr}: {e}"))?;
        Ok(Self { listener, handle })
    }

    /// The address scrapes go to.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Answers scrapes until `stop` is cancelled. `before_render` runs before
    /// each scrape, to set gauges that are read rather than counted (the
    /// connection pool's).
    pub async fn serve(self, before_render: impl Fn() + Send + Sync + 'static, stop: CancellationToken) {
        let Self { listener, handle } = self;
        let before_render = std::sync::Arc::new(before_render);
        let mut upkeep = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            let stream = tokio::select! {
                () = stop.cancelled() => return,
                _ = upkeep.tick() => {
                    handle.run_upkeep();
                    continue;
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "metrics listener: accept failed");
                        continue;
                    }
                },
            };
            let handle = handle.clone();
            let before_render = before_render.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let response = scrape(&request, &handle, &*before_render);
                    std::future::ready(Ok::<_, Infallible>(response))
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = connection => {}
                    () = stop.cancelled() => {}
                }
            });
        }
    }
}

/// The answer to one HTTP request: the rendered metrics for `GET /metrics`.
fn scrape<B>(
    request: &http::Request<B>,
    handle: &PrometheusHandle,
    before_render: &dyn Fn(),
) -> http::Response<Full<Bytes>> {
    let reply = |status: http::StatusCode, body: String| {
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .expect("a valid response")
    };
    if request.uri().path() != "/metrics" {
        return reply(http::StatusCode::NOT_FOUND, "metrics are at /metrics\n".into());
    }
    if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
        return reply(http::StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n".into());
    }
    before_render();
    let mut body = handle.render();
    body.push_str(&super::process::render());
    reply(http::StatusCode::OK, body)
}
