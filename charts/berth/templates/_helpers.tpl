{{/* Names and labels shared by every object. */}}

{{- define "berth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "berth.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "berth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "berth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "berth.selectorLabels" . }}
app.kubernetes.io/version: {{ include "berth.appVersion" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: berth
berth.dev/env: {{ .Values.environment }}
{{- end }}

{{- define "berth.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "berth.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: a digest pins the exact bytes and wins over a tag. */}}
{{- define "berth.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The version label: explicit, else the tag, else the chart's appVersion (a digest is no valid label value). */}}
{{- define "berth.appVersion" -}}
{{- .Values.config.appVersion | default .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* A path under BASE_PATH, e.g. "/api" + "/health". */}}
{{- define "berth.path" -}}
{{- printf "%s%s" .root.Values.config.basePath .path }}
{{- end }}

{{/*
The pod gets SIGTERM only after preStop; the service then drains for SHUTDOWN_TIMEOUT_MS and
exits hard one second later. The grace period covers all of it plus a margin, so the kubelet's
SIGKILL never cuts a drain short.
*/}}
{{- define "berth.terminationGracePeriodSeconds" -}}
{{- $drain := div (add .Values.config.shutdownTimeoutMs 999) 1000 }}
{{- add .Values.preStopSleepSeconds $drain 1 5 }}
{{- end }}

{{/*
Analysis queries: the recording rules of prometheus/rules for this environment, counted only
above the alerts' minimum request rate (as the alerts do), and 0 while that is not reached.
*/}}
{{- define "berth.analysisQuery.errorRatio" -}}
{{- $env := .Values.environment -}}
max(berth:http_error_rate:ratio5m{env="{{ $env }}"} and on (env) berth:http_requests:rate5m{env="{{ $env }}"} > {{ .Values.analysis.minRequestRate }}) or vector(0)
{{- end }}

{{- define "berth.analysisQuery.latencyP95" -}}
{{- $env := .Values.environment -}}
max(berth:http_request_duration_seconds:p95_5m{env="{{ $env }}"} and on (env) berth:http_requests:rate5m{env="{{ $env }}"} > {{ .Values.analysis.minRequestRate }}) or vector(0)
{{- end }}

{{/*
The non-secret settings: the ConfigMap's data, and the migration Job's env (a pre-install hook
runs before the ConfigMap exists, so it cannot refer to it).
*/}}
{{- define "berth.configData" -}}
PORT: {{ .Values.containerPort | quote }}
HOST: "0.0.0.0"
LOG_LEVEL: {{ .Values.config.logLevel | quote }}
BASE_PATH: {{ .Values.config.basePath | quote }}
SHUTDOWN_TIMEOUT_MS: {{ .Values.config.shutdownTimeoutMs | quote }}
{{- with .Values.config.appVersion }}
# Otherwise the image's own APP_VERSION, baked in at build time, stays in force.
APP_VERSION: {{ . | quote }}
{{- end }}
{{- range $name, $value := .Values.config.extraEnv }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* DATABASE_URL from the operator's Secret, for the pods and the migration Job alike. */}}
{{- define "berth.databaseEnv" -}}
{{- with .Values.database.existingSecret -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.database.secretKey }}
{{- end }}
{{- end }}
