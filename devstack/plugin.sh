#!/bin/bash
# shellcheck shell=bash
#
# devstack entry point of nova-docker: phase dispatch only. The work is in
# lib/nova-docker; settings are in settings (sourced by devstack first).
#
#   enable_plugin nova-docker <git url> [branch]

# Save trace setting
_XTRACE_NOVA_DOCKER_PLUGIN=$(set +o | grep xtrace)
set -o xtrace

NOVA_DOCKER_DIR=${NOVA_DOCKER_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
# shellcheck source=devstack/lib/nova-docker
source "$NOVA_DOCKER_DIR/devstack/lib/nova-docker"

case "${1:-}/${2:-}" in
    stack/pre-install)
        # Fail on bad input before devstack installs anything.
        nova_docker_check_settings
        ;;
    stack/install)
        echo_summary "Installing nova-docker and the Docker engine"
        nova_docker_check_settings
        install_nova_docker
        nova_docker_setup_group
        start_nova_docker
        ;;
    stack/post-config)
        echo_summary "Configuring nova-docker"
        configure_nova_docker
        ;;
    stack/extra)
        echo_summary "Initializing nova-docker"
        init_nova_docker
        ;;
    stack/test-config)
        # After stack.sh's is_nova_ready and discover_hosts.
        echo_summary "Adding this docker host to its aggregate"
        nova_docker_join_aggregate
        ;;
    unstack/*)
        stop_nova_docker
        # "unstack.sh --all" (clean.sh runs it) stops ovsdb-server after
        # the plugins' unstack: the managers go while OVS still answers.
        if [[ -n ${UNSTACK_ALL:-} ]]; then
            nova_docker_remove_ovs_managers
        fi
        ;;
    clean/*)
        cleanup_nova_docker
        ;;
esac

# Restore xtrace
$_XTRACE_NOVA_DOCKER_PLUGIN
