{{/* Chart name, overridable by nameOverride. */}}
{{- define "qwen-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: fullnameOverride, else the release name when it already contains the chart name,
else <release>-<chart>. With release name "qwen-operator" every name matches config/default.
*/}}
{{- define "qwen-operator.fullname" -}}
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

{{- define "qwen-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "qwen-operator.labels" -}}
helm.sh/chart: {{ include "qwen-operator.chart" . }}
{{ include "qwen-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: qwen-operator
{{- end }}

{{/* Labels selecting the manager pods. */}}
{{- define "qwen-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qwen-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "qwen-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "qwen-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference: repository@digest when a digest is set, else repository:tag (tag default: the appVersion). */}}
{{- define "qwen-operator.imageRef" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (.image.tag | default .appVersion) }}
{{- end }}
{{- end }}

{{- define "qwen-operator.image" -}}
{{- include "qwen-operator.imageRef" (dict "image" .Values.image "appVersion" .Chart.AppVersion) }}
{{- end }}

{{- define "qwen-operator.gatewayImage" -}}
{{- include "qwen-operator.imageRef" (dict "image" .Values.gatewayImage "appVersion" .Chart.AppVersion) }}
{{- end }}

{{/* The ServiceAccount as an RBAC subject. */}}
{{- define "qwen-operator.subject" -}}
- kind: ServiceAccount
  name: {{ include "qwen-operator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/* The ServiceAccount (and its token Secret) the ServiceMonitor authenticates as. */}}
{{- define "qwen-operator.metricsScraper" -}}
{{- printf "%s-metrics-scraper" (include "qwen-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
