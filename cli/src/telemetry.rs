//! OpenTelemetry traces of `fathom serve`, exported by OTLP over gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
//! is set; the other standard variables (`OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`)
//! apply as usual. The service is `fathom` unless they name it.
//!
//! Exported: the RPC spans and the SQL spans of `fathom-server` (INFO and
//! above, whatever `RUST_LOG` says of logs). Incoming W3C `traceparent`
//! headers are honoured.

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// Whether the environment asks for traces to be exported.
pub(crate) fn requested() -> bool {
    let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The exporting pipeline; [`Telemetry::shutdown`] flushes it.
pub(crate) struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Starts the OTLP exporter (on the current tokio runtime) and returns
    /// the `tracing` layer that feeds it.
    pub(crate) fn start<S>() -> anyhow::Result<(impl Layer<S>, Self)>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        if let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
            && protocol != "grpc"
        {
            anyhow::bail!("OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: fathom exports traces by OTLP over gRPC only");
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
        // The batch processor runs on tokio (not a thread of its own), where
        // tonic's client needs to be.
        let processor = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource())
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let tracer = provider.tracer("fathom");
        let exported = Targets::new()
            .with_target("fathom_server", tracing::Level::INFO)
            .with_target("fathom_cli", tracing::Level::INFO);
        let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(exported);
        Ok((layer, Self { provider }))
    }

    /// Exports the spans still buffered, then stops the exporter.
    pub(crate) async fn shutdown(self) {
        // Shutting down waits for the export, which runs on this runtime.
        let provider = self.provider;
        let shut = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = shut {
            eprintln!("fathom: exporting the last traces failed: {error}");
        }
    }
}

/// The resource the environment describes, named `fathom` unless it names itself.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let unnamed = detected
        .get(&opentelemetry::Key::new("service.name"))
        .is_none_or(|name| name.as_str().starts_with("unknown_service"));
    if unnamed {
        Resource::builder()
            .with_service_name("fathom")
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build()
    } else {
        detected
    }
}
