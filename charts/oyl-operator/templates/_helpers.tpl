{{/* The chart name, overridable. */}}
{{- define "oyl-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every object name: "<release>-oyl-operator" (or the release name when it already
contains the chart name). Cluster-scoped objects carry it too, so several releases (e.g. one per
watched namespace) never collide. Truncated to 63 characters (DNS label).
*/}}
{{- define "oyl-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The namespace of every namespaced object. */}}
{{- define "oyl-operator.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "oyl-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: immutable for the life of a release. */}}
{{- define "oyl-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "oyl-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The labels of every object. */}}
{{- define "oyl-operator.labels" -}}
helm.sh/chart: {{ include "oyl-operator.chart" . }}
{{ include "oyl-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: oyl-platform
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Labels of the helm test Job and its pod: a name of their own, so no selector of the chart
(Deployment, Service, NetworkPolicy, PodDisruptionBudget) ever matches the test pod.
*/}}
{{- define "oyl-operator.testLabels" -}}
helm.sh/chart: {{ include "oyl-operator.chart" . }}
app.kubernetes.io/name: {{ include "oyl-operator.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: oyl-platform
app.kubernetes.io/component: test
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "oyl-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "oyl-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag or repository@digest. */}}
{{- define "oyl-operator.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (toString (default .appVersion .image.tag)) -}}
{{- end -}}
{{- end -}}

{{/* Cross-value checks the schema cannot express. */}}
{{- define "oyl-operator.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: replicas without a leader would fight over every platform" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.service.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled needs metrics.service.enabled=true" -}}
{{- end -}}
{{- end -}}

{{/*
The operator's rules on the objects it manages. They must agree with config/rbac/cluster_role.yaml
(the reference for kubectl users): the chart grants the same rules, except that the Lease rule
is a Role in the release namespace (rbac.yaml). tests/e2e/chart.rs checks the chart's rules cover
the reference and grant nothing else.
*/}}
{{- define "oyl-operator.rules" -}}
- apiGroups: ["oyl.dev"]
  resources: ["oylplatforms"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["oyl.dev"]
  resources: ["oylplatforms/status"]
  verbs: ["get", "patch", "update"]
# The platform's children, applied server-side and pruned when no longer wanted.
- apiGroups: [""]
  resources: ["secrets", "configmaps", "services", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# Read only: why a component's pods cannot run (image pull, crash loop, scheduling), for status.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# CronJobs for scheduled backups, Jobs for on-demand ones.
- apiGroups: ["batch"]
  resources: ["cronjobs", "jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
