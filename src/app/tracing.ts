/**
 * OpenTelemetry traces (issue 16), off unless STELLA_OTLP_ENDPOINT is set: one trace from the API
 * request through StartWorkflow and RunWorkflow to each RunActivity, exported over OTLP/HTTP
 * (JSON) to `<endpoint>/v1/traces`. The Temporal side is @temporalio/interceptors-opentelemetry:
 * its client interceptor puts the trace context into the workflow's headers, its workflow
 * interceptors (bundled with the workflows) carry it to activities, its activity interceptor
 * continues it; workflow spans leave the sandbox through the `exporter` sink.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OpenTelemetryPlugin, OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import { buildInfo } from './metrics';

export interface Tracing {
  /** For Worker.create({ plugins }): client, workflow and activity interceptors plus the span sink. */
  plugin: OpenTelemetryPlugin;
  /** For new Client({ interceptors }): StartWorkflow/signal/query spans that carry the context. */
  clientInterceptors: { workflow: OpenTelemetryWorkflowClientInterceptor[] };
  /** Flushes spans not yet exported. */
  shutdown(): Promise<void>;
}

let active: Tracing | undefined;

/** The process's tracing, set up once (tracer provider, context manager and W3C propagator made global). */
export function startTracing(endpoint: string): Tracing {
  if (active) return active;
  const { version, commit } = buildInfo();
  const resource = new Resource({ 'service.name': 'stella', 'service.version': version, 'stella.commit': commit });
  const exporter = new OTLPTraceExporter({ url: `${endpoint.replace(/\/+$/, '')}/v1/traces` });
  const spanProcessor = new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 });
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  trace.setGlobalTracerProvider(provider);
  const tracer = provider.getTracer('stella');
  active = {
    plugin: new OpenTelemetryPlugin({ resource, spanProcessor, tracer }),
    clientInterceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor({ tracer })] },
    shutdown: () => provider.shutdown(),
  };
  return active;
}

/** The tracing set up in this process, if any (the worker adds its plugin when it is). */
export function activeTracing(): Tracing | undefined {
  return active;
}
