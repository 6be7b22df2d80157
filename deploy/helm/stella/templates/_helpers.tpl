{{/* Names and labels. */}}
{{- define "stella.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "stella.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "stella.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "stella.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "stella.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "stella.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{/* Secret names: the operator's existing Secret, else the one this chart renders. */}}
{{- define "stella.postgresSecret" -}}
{{- if .Values.postgres.existingSecret -}}{{ .Values.postgres.existingSecret }}{{- else -}}{{ include "stella.fullname" . }}-postgres{{- end -}}
{{- end -}}
{{- define "stella.postgresSecretKey" -}}
{{- if .Values.postgres.existingSecret -}}{{ .Values.postgres.existingSecretKey }}{{- else -}}database-url{{- end -}}
{{- end -}}
{{- define "stella.s3HasCredentials" -}}
{{- if or .Values.s3.existingSecret .Values.s3.accessKeyId -}}true{{- end -}}
{{- end -}}
{{- define "stella.s3Secret" -}}
{{- if .Values.s3.existingSecret -}}{{ .Values.s3.existingSecret }}{{- else -}}{{ include "stella.fullname" . }}-s3{{- end -}}
{{- end -}}

{{/* Fails the render when a required setting is missing, naming the value to set. */}}
{{- define "stella.validate" -}}
{{- if not (or .Values.postgres.existingSecret .Values.postgres.url) -}}
{{- fail "postgres: set postgres.existingSecret (a Secret with key database-url) or postgres.url" -}}
{{- end -}}
{{- if not .Values.keys.existingSecret -}}
{{- fail "keys.existingSecret is required: a Secret with the key store files made by `stella keys init <dir>` (kubectl create secret generic stella-keys --from-file=<dir>/keys/; docs/production.md)" -}}
{{- end -}}
{{- if and .Values.s3.accessKeyId (not .Values.s3.secretAccessKey) -}}
{{- fail "s3.accessKeyId is set without s3.secretAccessKey" -}}
{{- end -}}
{{- if and .Values.temporal.tls.existingSecret (not .Values.temporal.tls.enabled) -}}
{{- fail "temporal.tls.existingSecret is set but temporal.tls.enabled is false" -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by API, worker and the migration Job. */}}
{{- define "stella.env" -}}
- name: STELLA_DATA_DIR
  value: /var/lib/stella
- name: STELLA_KEYS_DIR
  value: /var/lib/stella/keys
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "stella.postgresSecret" . }}
      key: {{ include "stella.postgresSecretKey" . }}
- name: STELLA_TEMPORAL_ADDRESS
  value: {{ .Values.temporal.address | quote }}
- name: STELLA_TEMPORAL_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
- name: STELLA_TASK_QUEUE
  value: {{ .Values.temporal.taskQueue | quote }}
{{- include "stella.temporalEnv" . }}
- name: STELLA_BLOB_KIND
  value: s3
- name: STELLA_S3_BUCKET
  value: {{ .Values.s3.bucket | quote }}
- name: STELLA_S3_REGION
  value: {{ .Values.s3.region | quote }}
{{- with .Values.s3.endpoint }}
- name: STELLA_S3_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: STELLA_S3_FORCE_PATH_STYLE
  value: {{ .Values.s3.forcePathStyle | quote }}
{{- if include "stella.s3HasCredentials" . }}
- name: STELLA_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "stella.s3Secret" . }}
      key: {{ .Values.s3.accessKeyIdKey }}
- name: STELLA_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "stella.s3Secret" . }}
      key: {{ .Values.s3.secretAccessKeyKey }}
{{- end }}
{{- if .Values.registry.authSecret }}
- name: STELLA_REGISTRY_AUTH_FILE
  value: /etc/stella/registry/config.json
{{- end }}
{{- with .Values.registry.insecure }}
- name: STELLA_INSECURE_REGISTRIES
  value: {{ . | quote }}
{{- end }}
{{- if and .Values.registry.layerCacheMaxBytes (ne (toString .Values.registry.layerCacheMaxBytes) "0") }}
- name: STELLA_LAYER_CACHE_DIR
  value: /var/lib/stella/layer-cache
- name: STELLA_LAYER_CACHE_MAX_BYTES
  value: {{ .Values.registry.layerCacheMaxBytes | quote }}
{{- end }}
{{- range $k, $v := .Values.config }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Temporal TLS / API key (paths of the mounted Secret, API key from its Secret). */}}
{{- define "stella.temporalEnv" -}}
{{- if .Values.temporal.tls.enabled }}
- name: TEMPORAL_TLS
  value: "true"
{{- with .Values.temporal.tls.serverName }}
- name: TEMPORAL_TLS_SERVER_NAME
  value: {{ . | quote }}
{{- end }}
{{- if .Values.temporal.tls.existingSecret }}
- name: TEMPORAL_TLS_SERVER_CA_CERT_PATH
  value: /etc/stella/temporal-tls/{{ .Values.temporal.tls.caKey }}
- name: TEMPORAL_TLS_CLIENT_CERT_PATH
  value: /etc/stella/temporal-tls/{{ .Values.temporal.tls.certKey }}
- name: TEMPORAL_TLS_CLIENT_KEY_PATH
  value: /etc/stella/temporal-tls/{{ .Values.temporal.tls.keyKey }}
{{- end }}
{{- end }}
{{- if .Values.temporal.apiKey.existingSecret }}
- name: TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.temporal.apiKey.existingSecret }}
      key: {{ .Values.temporal.apiKey.key }}
{{- end }}
{{- end -}}

{{/* Volumes: writable data dir and /tmp (read-only root), the keys Secret, Temporal TLS. */}}
{{- define "stella.volumes" -}}
- name: data
  emptyDir: {}
- name: tmp
  emptyDir: {}
- name: keys-secret
  secret:
    secretName: {{ .Values.keys.existingSecret }}
    defaultMode: 0440
{{- if .Values.registry.authSecret }}
- name: registry-auth
  secret:
    secretName: {{ .Values.registry.authSecret }}
    defaultMode: 0440
    items:
      - key: .dockerconfigjson
        path: config.json
{{- end }}
{{- if and .Values.temporal.tls.enabled .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  secret:
    secretName: {{ .Values.temporal.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "stella.volumeMounts" -}}
- name: data
  mountPath: /var/lib/stella
- name: tmp
  mountPath: /tmp
{{- if .Values.registry.authSecret }}
- name: registry-auth
  mountPath: /etc/stella/registry
  readOnly: true
{{- end }}
{{- if and .Values.temporal.tls.enabled .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  mountPath: /etc/stella/temporal-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* Copies the keys Secret into the private key store (<dir>/keys/<kid>.json, 0600) before stella starts. */}}
{{- define "stella.keysInit" -}}
- name: keys
  image: {{ include "stella.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["/bin/sh", "-c", "mkdir -p /var/lib/stella/keys/keys && cp /keys-secret/*.json /var/lib/stella/keys/keys/ && chmod 700 /var/lib/stella/keys /var/lib/stella/keys/keys && chmod 600 /var/lib/stella/keys/keys/*.json"]
  securityContext: {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: data
      mountPath: /var/lib/stella
    - name: keys-secret
      mountPath: /keys-secret
      readOnly: true
  resources:
    requests: { cpu: 10m, memory: 16Mi }
    limits: { memory: 64Mi }
{{- end -}}

{{- define "stella.probes" -}}
{{- $p := .probes -}}
startupProbe:
  httpGet: { path: {{ $p.startup.path }}, port: http }
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  httpGet: { path: {{ $p.liveness.path }}, port: http }
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet: { path: {{ $p.readiness.path }}, port: http }
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
{{- end -}}

{{/* The worker's command and where it answers /healthz, /readyz and /metrics (its pod port). */}}
{{- define "stella.workerCommand" -}}
# Worker only: no API in this process; a node:http listener answers the probes and /metrics.
args: ["serve", "--no-api"]
{{- end -}}

{{- define "stella.workerListenEnv" -}}
- name: STELLA_API_HOST
  value: 0.0.0.0
- name: STELLA_WORKER_HTTP_PORT
  value: {{ .Values.worker.port | quote }}
{{- if .Values.worker.sdkMetricsPort }}
- name: STELLA_SDK_METRICS_ADDRESS
  value: {{ printf "0.0.0.0:%v" .Values.worker.sdkMetricsPort | quote }}
{{- end }}
{{- end -}}
