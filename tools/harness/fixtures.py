# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Glance and Neutron stand-ins that feed the real Docker engine and OVS.

They extend Nova's own fixtures: Glance serves real ``docker save`` data
as a stream of chunks (as the real client does) and counts what it sends;
Neutron binds ports as OVS on the userspace (netdev) datapath and gives
each port its own address.
"""

import collections
import copy
import hashlib
import ipaddress
import random
import subprocess
import threading

from nova.tests import fixtures as nova_fixtures
from oslo_utils import uuidutils

BUSYBOX_IMAGE = 'nova-docker/busybox:latest'
BUSYBOX_IMAGE_ID = '8f1d1d36-5cc4-4a8b-9f59-3ac0c9f5a1f0'
CHUNK = 64 * 1024

_saved = {}
_saved_lock = threading.Lock()


def docker_save(image):
    """Bytes of ``docker save IMAGE`` (cached for the test run)."""
    with _saved_lock:
        if image not in _saved:
            _saved[image] = subprocess.run(
                ['docker', 'save', image], check=True,
                stdout=subprocess.PIPE).stdout
        return _saved[image]


def glance_image(data, name, image_id=None, container_format='docker',
                 **properties):
    """Glance metadata for *data*, with the checksums Glance computes."""
    return {
        'id': image_id or uuidutils.generate_uuid(),
        'name': name,
        'status': 'active',
        'visibility': 'public',
        'container_format': container_format,
        'disk_format': 'raw',
        'size': len(data),
        'min_ram': 0,
        'min_disk': 0,
        'checksum': hashlib.md5(data, usedforsecurity=False).hexdigest(),
        'os_hash_algo': 'sha512',
        'os_hash_value': hashlib.sha512(data).hexdigest(),
        'properties': dict(properties),
    }


class DockerGlanceFixture(nova_fixtures.GlanceFixture):
    """Glance serving real image data as chunks, counting bytes served."""

    def setUp(self):
        super().setUp()
        self.bytes_served = collections.Counter()
        self.downloads = collections.Counter()
        # image id -> (offset, error): the download stops after *offset*
        # bytes, raising *error* (a reset connection) or, if None, ending
        # as if the archive were complete.
        self.cuts = {}
        # Set by a test to hold uploads after their first chunk until
        # ``release_upload`` is set; ``upload_started`` tells it is held.
        self.hold_uploads = False
        self.upload_started = threading.Event()
        self.release_upload = threading.Event()
        data = docker_save(BUSYBOX_IMAGE)
        self.add_image(data, 'busybox', image_id=BUSYBOX_IMAGE_ID)

    def add_image(self, data, name, **kwargs):
        """Register *data* as an image; return its id."""
        meta = glance_image(data, name, **kwargs)
        self.create(None, meta)
        self._imagedata[meta['id']] = data
        return meta['id']

    def download(self, context, image_id, data=None, dst_path=None,
                 trusted_certs=None):
        if data is not None or dst_path is not None:
            return super().download(context, image_id, data=data,
                                    dst_path=dst_path,
                                    trusted_certs=trusted_certs)
        self.show(context, image_id)
        self.downloads[image_id] += 1
        return self._chunks(image_id)

    def _chunks(self, image_id):
        blob = self._imagedata.get(image_id, b'')
        cut, error = self.cuts.get(image_id, (len(blob), None))
        for offset in range(0, min(cut, len(blob)), CHUNK):
            chunk = blob[offset:min(offset + CHUNK, cut)]
            self.bytes_served[image_id] += len(chunk)
            yield chunk
        if error is not None:
            raise error

    def update(self, context, image_id, metadata, data=None,
               purge_props=False):
        image = super().update(context, image_id, metadata,
                               purge_props=purge_props)
        if data is not None:
            blob = self._receive(data)
            self._imagedata[image_id] = blob
            image.update(size=len(blob), status='active')
        return image

    def _receive(self, data):
        """The upload's bytes, read as glanceclient reads a body."""
        if not hasattr(data, 'read'):
            return b''.join(data)
        pieces = [data.read(CHUNK)]
        if self.hold_uploads:
            self.upload_started.set()
            self.release_upload.wait(120)
        while pieces[-1]:
            pieces.append(data.read(CHUNK))
        return b''.join(pieces)


NETDEV_VIF_DETAILS = {
    'datapath_type': 'netdev',
    'bridge_name': 'br-int',
    'port_filter': True,
    'ovs_hybrid_plug': False,
}


class OVSNeutronFixture(nova_fixtures.NeutronFixture):
    """Neutron whose ports bind as OVS on br-int (netdev), distinct IPs."""

    def __init__(self, test):
        super().__init__(test)
        self._next_ip = ipaddress.ip_address('192.168.1.10')
        # Tests may change how the next ports bind (bad-input cases).
        self.vif_details = copy.deepcopy(NETDEV_VIF_DETAILS)
        self.vif_type = 'ovs'
        # Ports that lose their addresses when bound: Nova's API refuses a
        # port without fixed IPs, so only this reaches the driver's check.
        self.drop_fixed_ips_on_bind = set()
        # Nova's first created port has a fixed id and MAC: every test on
        # this machine (other engineers' too) would wire the same port, and
        # the privileged side refuses a port wired into another namespace.
        self.default_port = dict(
            copy.deepcopy(self.default_port), id=uuidutils.generate_uuid(),
            mac_address='fa:16:3e:' + ':'.join(
                '%02x' % random.randint(0, 255) for _ in range(3)))
        for port in self._ports.values():
            port['binding:vif_details'] = copy.deepcopy(self.vif_details)

    def _allocate_ip(self):
        ip = str(self._next_ip)
        self._next_ip += 1
        return ip

    def create_port(self, body=None):
        result = super().create_port(body)
        port = self._ports[result['port']['id']]
        requested = ((body or {}).get('port') or {}).get('fixed_ips')
        if requested and requested[0].get('ip_address'):
            port['fixed_ips'] = copy.deepcopy(requested)
        else:
            port['fixed_ips'] = [{'ip_address': self._allocate_ip(),
                                  'subnet_id': self.subnet_1['id']}]
        port['binding:vif_details'] = copy.deepcopy(self.vif_details)
        port['binding:vif_type'] = self.vif_type
        return {'port': copy.deepcopy(port)}

    def update_port(self, port_id, body=None):
        body = copy.deepcopy(body or {'port': {}})
        if 'binding:host_id' in body['port'] and \
                body['port']['binding:host_id'] is not None:
            port = self._ports[port_id]
            body['port']['binding:vif_details'] = copy.deepcopy(
                port.get('binding:vif_details') or self.vif_details)
            if port_id in self.drop_fixed_ips_on_bind:
                body['port']['fixed_ips'] = []
        return super().update_port(port_id, body)
