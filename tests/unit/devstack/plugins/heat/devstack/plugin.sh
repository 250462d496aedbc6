#!/bin/bash
# shellcheck shell=bash
# Test double of heat's devstack plugin: writes heat.conf in post-config,
# as heat's configure_heat does.
if [[ $1 == stack && $2 == post-config ]]; then
    sudo install -d "$HEAT_CONF_DIR"
    iniset -sudo "$HEAT_CONF" DEFAULT heat_metadata_server_url "http://$SERVICE_HOST/heat-api-cfn"
fi
if [[ $1 == clean ]]; then
    sudo rm -rf "$HEAT_CONF_DIR"
fi
