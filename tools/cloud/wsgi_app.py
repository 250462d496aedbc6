"""WSGI entry point for the single-node cloud's API services.

Several OpenStack WSGI modules parse sys.argv (or call CONF() with no
arguments) when they are imported; under a WSGI server sys.argv holds the
server's own arguments. This module gives them the arguments of the service
instead, from the environment, then exposes the service's application:

  NOVA_DOCKER_WSGI_MODULE  the module holding ``application``
  NOVA_DOCKER_WSGI_ARGS    its command-line arguments (space separated)
"""

import importlib
import os
import sys

sys.argv = [os.environ['NOVA_DOCKER_WSGI_MODULE']] + \
    os.environ.get('NOVA_DOCKER_WSGI_ARGS', '').split()
application = importlib.import_module(
    os.environ['NOVA_DOCKER_WSGI_MODULE']).application
