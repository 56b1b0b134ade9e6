# Read by every non-interactive bash in the universal image (BASH_ENV): the commands the agent
# runs and the scripts they start. The JDK ignores HTTPS_PROXY and friends, so the same proxy
# goes to the JVM as system properties through JDK_JAVA_OPTIONS (read by the `java` launcher,
# so by Gradle and Maven as well). Computed in each shell: the proxy is the one of that moment.
# shellcheck shell=bash

__claude_runner_jvm_proxy() {
    local https="${HTTPS_PROXY:-${https_proxy:-}}" http="${HTTP_PROXY:-${http_proxy:-}}"
    local no="${NO_PROXY:-${no_proxy:-}}" opts="" item hosts=""
    local -   # set -f below stays in here: no file name expansion of "*" in the lists
    set -f
    case "${JDK_JAVA_OPTIONS:-}" in *-Dhttps.proxyHost=* | *-Dhttp.proxyHost=*) return ;; esac
    __claude_runner_hostport() {
        # http://user:pass@host:port/path -> "host port" (Java takes no credentials here).
        local rest="${1#*://}"
        rest="${rest%%/*}"
        rest="${rest##*@}"
        case "$rest" in
            \[*\]:*) # [v6]:port; Java wants the address without brackets
                rest="${rest#[}"
                echo "${rest%]:*} ${rest##*:}"
                ;;
            \[*\]) echo "${rest:1:-1} 80" ;;
            *:*) echo "${rest%%:*} ${rest##*:}" ;;
            ?*) echo "$rest 80" ;;
        esac
    }
    if [ -n "$http" ]; then
        set -- $(__claude_runner_hostport "$http")
        [ $# = 2 ] && opts="-Dhttp.proxyHost=$1 -Dhttp.proxyPort=$2"
    fi
    if [ -n "$https" ]; then
        set -- $(__claude_runner_hostport "$https")
        [ $# = 2 ] && opts="$opts -Dhttps.proxyHost=$1 -Dhttps.proxyPort=$2"
    fi
    unset -f __claude_runner_hostport
    [ -n "$opts" ] || return
    # NO_PROXY "a,.b.example" -> http.nonProxyHosts "a|*.b.example" (it covers https too).
    local IFS=,
    for item in $no; do
        item="${item// /}"
        case "$item" in
            "") continue ;;
            .*) item="*$item" ;;
        esac
        hosts="${hosts:+$hosts|}$item"
    done
    [ -n "$hosts" ] && opts="$opts -Dhttp.nonProxyHosts=$hosts"
    export JDK_JAVA_OPTIONS="${opts# }${JDK_JAVA_OPTIONS:+ $JDK_JAVA_OPTIONS}"
}
__claude_runner_jvm_proxy
unset -f __claude_runner_jvm_proxy
