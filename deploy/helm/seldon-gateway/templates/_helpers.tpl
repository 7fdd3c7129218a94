{{/* The chart name, or nameOverride. */}}
{{- define "seldon-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object names: the release name when it holds the chart name (`helm install seldon-gateway`: seldon-gateway, as deploy/kustomize names them), else <release>-<name>. */}}
{{- define "seldon-gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "seldon-gateway.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* What selects the gateway pods. */}}
{{- define "seldon-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "seldon-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "seldon-gateway.labels" -}}
{{ include "seldon-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ include "seldon-gateway.tag" . | quote }}
app.kubernetes.io/part-of: seldon-gateway
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "seldon-gateway.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{- define "seldon-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "seldon-gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "seldon-gateway.adminTokenSecret" -}}
{{- default (printf "%s-admin-token" (include "seldon-gateway.fullname" .)) .Values.adminToken.secretName -}}
{{- end -}}

{{- define "seldon-gateway.tlsSecret" -}}
{{- default (printf "%s-tls" (include "seldon-gateway.fullname" .)) .Values.tls.secretName -}}
{{- end -}}

{{/* The admin Service: asked for, or needed by the ServiceMonitor. */}}
{{- define "seldon-gateway.adminService" -}}
{{- if or .Values.adminService.enabled .Values.monitoring.serviceMonitor.enabled -}}true{{- end -}}
{{- end -}}

{{/* The scrape credential of a monitor endpoint, with adminToken.enabled. */}}
{{- define "seldon-gateway.scrapeAuthorization" -}}
{{- if .Values.adminToken.enabled }}
authorization:
  type: Bearer
  credentials:
    name: {{ include "seldon-gateway.adminTokenSecret" . }}
    key: {{ .Values.adminToken.key }}
{{- end -}}
{{- end -}}

{{/* Choices that cannot go together: refused with a sentence rather than rendered half right. */}}
{{- define "seldon-gateway.validate" -}}
{{- if and .Values.monitoring.serviceMonitor.enabled .Values.monitoring.podMonitor.enabled -}}
{{- fail "monitoring.serviceMonitor and monitoring.podMonitor both scrape every pod: enable one of the two" -}}
{{- end -}}
{{- if and .Values.redis.url .Values.redis.urlSecret.name -}}
{{- fail "redis.url and redis.urlSecret.name both set REDIS_URL: give one" -}}
{{- end -}}
{{- if and .Values.tls.certManager.enabled (not .Values.tls.enabled) -}}
{{- fail "tls.certManager.enabled fills the Secret tls.enabled mounts: set tls.enabled too" -}}
{{- end -}}
{{- end -}}
