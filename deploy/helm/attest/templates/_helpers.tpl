{{/* Names and labels. */}}
{{- define "attest.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "attest.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "attest.selectorLabels" -}}
app.kubernetes.io/name: {{ include "attest.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "attest.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "attest.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: attest
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "attest.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "attest.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "attest.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The environment variable that carries an API key's hash: ATTEST_KEY_HASH_<ID>. */}}
{{- define "attest.keyHashEnv" -}}
{{- printf "ATTEST_KEY_HASH_%s" (regexReplaceAll "[^A-Za-z0-9]" . "_" | upper) -}}
{{- end -}}

{{/*
Refuses values that would weaken the audit guarantees (docs/backends.md). values.schema.json
checks each value alone; this checks what depends on more than one.
*/}}
{{- define "attest.validate" -}}
{{- $log := .Values.log -}}
{{- if eq $log.backend "kafka" -}}
{{- $t := $log.kafka.topic -}}
{{- if not $log.kafka.brokers -}}
{{- fail "log.kafka.brokers: list the Kafka bootstrap brokers (host:port)" -}}
{{- end -}}
{{- if ge (int $t.minInsyncReplicas) (int $t.replicationFactor) -}}
{{- fail (printf "log.kafka.topic.minInsyncReplicas (%v) must be below replicationFactor (%v), or one broker down stops every call" $t.minInsyncReplicas $t.replicationFactor) -}}
{{- end -}}
{{- if and $t.strimzi.enabled (not $t.strimzi.cluster) -}}
{{- fail "log.kafka.topic.strimzi.cluster: name the Strimzi Kafka cluster that owns the topic" -}}
{{- end -}}
{{- if and $log.kafka.sasl.mechanism (not $log.kafka.sasl.existingSecret) -}}
{{- fail "log.kafka.sasl.existingSecret: name the Secret holding the SASL credentials" -}}
{{- end -}}
{{- else if eq $log.backend "kurrent" -}}
{{- if not $log.kurrent.existingSecret -}}
{{- fail "log.kurrent.existingSecret: name the Secret holding the KurrentDB connection string" -}}
{{- end -}}
{{- end -}}
{{- if not .Values.upstreams -}}
{{- fail "upstreams: configure at least one upstream MCP server" -}}
{{- end -}}
{{- $seen := dict -}}
{{- range .Values.auth.keys -}}
{{- $env := include "attest.keyHashEnv" .id -}}
{{- if hasKey $seen $env -}}
{{- fail (printf "auth.keys: ids %q and %q map to the same variable %s" (get $seen $env) .id $env) -}}
{{- end -}}
{{- $_ := set $seen $env .id -}}
{{- end -}}
{{- if and .Values.auth.keys (not .Values.auth.existingSecret) -}}
{{- fail "auth.existingSecret: name the Secret holding the API key hashes" -}}
{{- end -}}
{{- range .Values.secretEnv -}}
{{- if not (and .name .secretName .key) -}}
{{- fail "secretEnv: every entry needs name, secretName and key" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The gateway config file (README "Config"): ${ENV} references stand in for every secret. */}}
{{- define "attest.config" -}}
{{- $fullname := include "attest.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $fullname (printf "%s.%s" $fullname $ns) (printf "%s.%s.svc" $fullname $ns) (printf "%s.%s.svc.cluster.local" $fullname $ns) -}}
{{- $gateway := dict
  "instance" "${ATTEST_INSTANCE}"
  "host" "0.0.0.0"
  "port" (int .Values.gateway.port)
  "maxBodyBytes" (int .Values.gateway.maxBodyBytes)
  "sessionIdleMs" (int .Values.gateway.sessionIdleMs)
  "allowedOrigins" .Values.gateway.allowedOrigins
  "allowedHosts" (concat $hosts .Values.gateway.extraAllowedHosts)
-}}
{{- $log := dict "backend" .Values.log.backend "appendTimeoutMs" (int .Values.log.appendTimeoutMs) -}}
{{- if eq .Values.log.backend "kafka" -}}
{{- $k := .Values.log.kafka -}}
{{- $_ := set $log "brokers" $k.brokers -}}
{{- $_ := set $log "topic" $k.topic.name -}}
{{- $_ := set $log "clientId" (printf "%s-${ATTEST_INSTANCE}" $k.clientIdPrefix) -}}
{{- $_ := set $log "createTopic" $k.topic.create -}}
{{- $_ := set $log "requireProductionTopic" $k.topic.requireProduction -}}
{{- $_ := set $log "partitions" (int $k.topic.partitions) -}}
{{- $_ := set $log "replicationFactor" (int $k.topic.replicationFactor) -}}
{{- $_ := set $log "minInsyncReplicas" (int $k.topic.minInsyncReplicas) -}}
{{- $_ := set $log "retentionMs" (int64 $k.topic.retentionMs) -}}
{{- $_ := set $log "ssl" $k.tls.enabled -}}
{{- if $k.sasl.mechanism -}}
{{- $_ := set $log "sasl" (dict "mechanism" $k.sasl.mechanism "username" "${ATTEST_KAFKA_USERNAME}" "password" "${ATTEST_KAFKA_PASSWORD}") -}}
{{- end -}}
{{- else -}}
{{- $_ := set $log "connectionString" "${ATTEST_KURRENTDB_CONNECTION_STRING}" -}}
{{- end -}}
{{- $keys := list -}}
{{- range .Values.auth.keys -}}
{{- $key := omit . "hashKey" -}}
{{- $_ := set $key "hash" (printf "${%s}" (include "attest.keyHashEnv" .id)) -}}
{{- $keys = append $keys $key -}}
{{- end -}}
{{- $config := dict "gateway" $gateway "log" $log "auth" (dict "keys" $keys) "upstreams" .Values.upstreams -}}
{{- toYaml $config -}}
{{- end -}}

{{/* The Kafka topic configuration docs/backends.md requires; only partitions, replicas,
min.insync.replicas, retention.ms and max.message.bytes come from values. */}}
{{- define "attest.topicConfig" -}}
{{- $t := .Values.log.kafka.topic -}}
cleanup.policy: delete
max.message.bytes: {{ int $t.maxMessageBytes | quote }}
min.insync.replicas: {{ int $t.minInsyncReplicas | quote }}
retention.bytes: "-1"
retention.ms: {{ int64 $t.retentionMs | quote }}
unclean.leader.election.enable: "false"
{{- end -}}
