{{/* Names ----------------------------------------------------------------------------------- */}}

{{- define "eb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "eb.fullname" -}}
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

{{- define "eb.operator.name" -}}{{ include "eb.fullname" . | trunc 54 | trimSuffix "-" }}-operator{{- end }}
{{- define "eb.api.name" -}}{{ include "eb.fullname" . | trunc 58 | trimSuffix "-" }}-api{{- end }}
{{- define "eb.tokens.secret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-tokens" (include "eb.api.name" .)) }}
{{- end }}

{{/* The namespace REST-created OfferSets and Executions (and their Pods) live in. */}}
{{- define "eb.sessionsNamespace" -}}
{{- .Values.api.sessionsNamespace | default .Release.Namespace }}
{{- end }}

{{/* This broker's id among its peers (EB-Via): the value, else <fullname>.<namespace>. */}}
{{- define "eb.brokerId" -}}
{{- .Values.federation.brokerId | default (printf "%s.%s" (include "eb.fullname" .) .Release.Namespace) }}
{{- end }}

{{- define "eb.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Labels ---------------------------------------------------------------------------------- */}}

{{- define "eb.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "eb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: execution-broker
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "eb.selector" -}}
app.kubernetes.io/name: {{ include "eb.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Security: the restricted Pod Security Standard. */}}

{{- define "eb.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsUser }}
fsGroup: {{ .Values.securityContext.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "eb.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
RBAC from files/<name> (synced from manifests/ by hack/sync-install.py), re-homed into this
release: ServiceAccounts move to the release namespace; cluster-scoped names get the release's
prefix (two releases never share a ClusterRole); bindings follow both renames; every Role and
RoleBinding is written once into each of .roleNamespaces (a JSON list; default: the release
namespace), which is how the operator may create Pods exactly where sessions run.
Call with (dict "root" $ "file" "files/rbac.yaml" ["roleNamespaces" (toJson list)]).
*/}}
{{- define "eb.rbacFrom" -}}
{{- $root := .root }}
{{- $prefix := include "eb.fullname" $root }}
{{- $roleNamespaces := list $root.Release.Namespace }}
{{- if .roleNamespaces }}{{ $roleNamespaces = fromJsonArray .roleNamespaces }}{{ end }}
{{- range $doc := splitList "\n---" ($root.Files.Get .file) }}
{{- $obj := fromYaml $doc }}
{{- if and $obj $obj.kind }}
{{- $meta := $obj.metadata }}
{{- $_ := set $meta "labels" (merge (default (dict) $meta.labels) (fromYaml (include "eb.labels" $root))) }}
{{- if hasKey $obj "roleRef" }}
{{- if eq $obj.roleRef.kind "ClusterRole" }}
{{- $_ := set $obj.roleRef "name" (printf "%s-%s" $prefix $obj.roleRef.name) }}
{{- end }}
{{- end }}
{{- range $s := (default (list) $obj.subjects) }}
{{- if eq $s.kind "ServiceAccount" }}
{{- $_ := set $s "namespace" $root.Release.Namespace }}
{{- end }}
{{- end }}
{{- range $rule := (default (list) $obj.rules) }}
{{- if and (has "clusterroles" $rule.resources) $rule.resourceNames }}
{{- $names := list }}
{{- range $n := $rule.resourceNames }}{{ $names = append $names (printf "%s-%s" $prefix $n) }}{{ end }}
{{- $_ := set $rule "resourceNames" $names }}
{{- end }}
{{- end }}
{{- if eq $obj.kind "ValidatingAdmissionPolicyBinding" }}
{{- $_ := set $obj.spec "policyName" (printf "%s-%s" $prefix $obj.spec.policyName) }}
{{- end }}
{{- if has $obj.kind (list "ClusterRole" "ClusterRoleBinding" "ValidatingAdmissionPolicy" "ValidatingAdmissionPolicyBinding") }}
{{- $_ := set $meta "name" (printf "%s-%s" $prefix $meta.name) }}
{{- $_ := unset $meta "namespace" }}
---
{{ toYaml $obj }}
{{- else if has $obj.kind (list "Role" "RoleBinding") }}
{{- range $ns := $roleNamespaces }}
{{- $_ := set $meta "namespace" $ns }}
---
{{ toYaml $obj }}
{{- end }}
{{- else }}
{{- $_ := set $meta "namespace" $root.Release.Namespace }}
---
{{ toYaml $obj }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The first ServiceAccount defined in a synced RBAC file. Call with (dict "root" $ "file" "files/rbac.yaml"). */}}
{{- define "eb.serviceAccountIn" -}}
{{- $found := "" }}
{{- range $doc := splitList "\n---" (.root.Files.Get .file) }}
{{- $obj := fromYaml $doc }}
{{- if and (not $found) $obj (eq (default "" $obj.kind) "ServiceAccount") }}
{{- $found = $obj.metadata.name }}
{{- end }}
{{- end }}
{{- required (printf "%s defines no ServiceAccount (run python3 hack/sync-install.py)" .file) $found }}
{{- end }}

{{- define "eb.operator.serviceAccount" -}}
{{- include "eb.serviceAccountIn" (dict "root" . "file" "files/rbac.yaml") }}
{{- end }}

{{- define "eb.api.serviceAccount" -}}
{{- include "eb.serviceAccountIn" (dict "root" . "file" "files/api-rbac.yaml") }}
{{- end }}

{{/* Where the operator may create and delete Pods: the sessions namespace, every watched one, and any extra. */}}
{{- define "eb.workloadNamespaces" -}}
{{- toJson (uniq (concat (list (include "eb.sessionsNamespace" .)) .Values.operator.watchNamespaces .Values.operator.workloadNamespaces)) }}
{{- end }}

{{/* Namespaces the operator handles: none listed means all; else the list plus the sessions namespace. */}}
{{- define "eb.operator.namespaces" -}}
{{- if .Values.operator.watchNamespaces }}
{{- toJson (uniq (append .Values.operator.watchNamespaces (include "eb.sessionsNamespace" .))) }}
{{- else }}
{{- toJson (list) }}
{{- end }}
{{- end }}

{{/* The static-token CSV (Kubernetes static token file format). */}}
{{- define "eb.tokens.csv" -}}
{{- range .Values.auth.staticTokens }}
{{- $groups := join "," (default (list) .groups) }}
{{- printf "%s,%s,%s,\"%s\"" (required "auth.staticTokens[].token is required" .token) (required "auth.staticTokens[].user is required" .user) (default .user .uid) $groups }}
{{ end }}
{{- end }}

{{/* Egress of the broker's Pods: the Kubernetes API server, and DNS. */}}
{{- define "eb.egress" -}}
- # the Kubernetes API server
  {{- with .Values.networkPolicy.kubeApiServer.cidrs }}
  to:
    {{- range . }}
    - ipBlock: {cidr: {{ . | quote }}}
    {{- end }}
  {{- end }}
  ports:
    {{- range .Values.networkPolicy.kubeApiServer.ports }}
    - {protocol: TCP, port: {{ . }}}
    {{- end }}
{{- if .Values.networkPolicy.dns }}
- # DNS
  to:
    - namespaceSelector: {}
  ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end }}
{{- end }}

{{/* The session key's Secret and key (values.sessionKey). */}}
{{- define "eb.sessionKey.secret" -}}
{{- .Values.sessionKey.existingSecret | default (printf "%s-session-key" (include "eb.fullname" .)) }}
{{- end }}

{{/* The platform's spec.routes from values.routes: the gate is the API Service unless gate.url is given. */}}
{{- define "eb.routes" -}}
{{- $r := .Values.routes }}
publicUrl: {{ required "routes.publicUrl is required when routes.enabled" $r.publicUrl | quote }}
pathPrefix: {{ $r.pathPrefix | quote }}
{{- with $r.host }}
host: {{ . | quote }}
{{- end }}
{{- with $r.ingressClassName }}
ingressClassName: {{ . | quote }}
{{- end }}
{{- with $r.gateway }}
gateway:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $r.tlsSecretName }}
tlsSecretName: {{ . | quote }}
{{- end }}
{{- with $r.annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
gate:
  provider: {{ $r.gate.provider | quote }}
  {{- if $r.gate.url }}
  url: {{ $r.gate.url | quote }}
  {{- else }}
  service: {namespace: {{ .Release.Namespace | quote }}, name: {{ include "eb.fullname" . | quote }}, port: {{ .Values.api.service.port }}}
  {{- end }}
{{- end }}

{{/* The session key as a volume: optional, so a plain install without it starts (no routes, no logins). */}}
{{- define "eb.sessionKey.volume" -}}
- name: session-key
  secret:
    secretName: {{ include "eb.sessionKey.secret" . }}
    optional: true
    defaultMode: 0440
    items:
      - key: {{ .Values.sessionKey.existingSecretKey }}
        path: key
{{- end }}
