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

"""Exceptions of the Docker driver, one class per failure.

Each is a NovaException, so a message raised during spawn becomes the
instance fault an operator sees in ``openstack server show``. Failures
caused by the request itself (image, metadata, flavor, command) derive from
Nova's InvalidInput or ImageUnacceptable, so Nova aborts the build with this
message instead of rescheduling it to another host that would fail alike.
"""

from nova import exception as nova_exception


class DockerDriverError(nova_exception.NovaException):
    msg_fmt = 'Docker driver error: %(reason)s'


class DockerUnreachable(DockerDriverError):
    msg_fmt = ('Cannot reach the Docker engine at %(url)s: %(reason)s. '
               'Start dockerd, and let the nova-compute user open the '
               'socket by adding it to the "docker" group (never make the '
               'socket world-writable); [docker] api_url sets the address.')


class DockerError(DockerDriverError):
    msg_fmt = 'Docker engine refused to %(what)s: %(reason)s'


class DockerObjectNotFound(DockerError):
    msg_fmt = 'Docker engine cannot %(what)s: not found (%(reason)s)'


class DockerConflict(DockerError):
    msg_fmt = 'Docker engine cannot %(what)s: conflict (%(reason)s)'


class InvalidImageFormat(nova_exception.ImageUnacceptable):
    msg_fmt = ('Image %(image_id)s has container_format=%(container_format)s; '
               'the Docker driver boots only images with '
               'container_format=docker (a "docker save" tarball uploaded '
               'with --container-format docker --disk-format raw).')


class InvalidEnvironmentName(nova_exception.InvalidInput):
    msg_fmt = ('Instance metadata key %(key)r cannot become an environment '
               'variable of the container: names must match '
               '[A-Za-z_][A-Za-z0-9_]*. Rename or remove the key.')


class InvalidCommandLine(nova_exception.InvalidInput):
    msg_fmt = 'Image property os_command_line %(value)r is invalid: %(reason)s'


# Start failures are almost always the image's or the command's fault
# (another host would fail the same way), so Nova aborts, not reschedules.
class ContainerStartFailed(nova_exception.InvalidInput):
    # Nova keeps 255 characters of a fault: what to fix comes first.
    msg_fmt = ('Command %(command)s (image property os_command_line, or the '
               "image's own command) did not start: %(reason)s")


class SandboxImageUnavailable(DockerDriverError):
    msg_fmt = ('Cannot build the sandbox image %(image)s from '
               '%(binary)s: %(reason)s. Install busybox-static or set '
               '[docker] sandbox_binary to a static busybox.')


class InvalidFlavorPidsLimit(nova_exception.InvalidInput):
    msg_fmt = ('Flavor %(flavor)s has extra spec docker:pids_limit=%(value)r; '
               'it must be a whole number of at least 16.')


class InvalidImageId(nova_exception.ImageUnacceptable):
    msg_fmt = ('Image id %(image_id)r cannot name a Docker image: Glance '
               'image ids are UUIDs (lowercase letters, digits and dashes).')


class InvalidImageArchive(nova_exception.ImageUnacceptable):
    # Nova keeps 255 characters of a fault: the problem comes first.
    msg_fmt = ('Image %(image_id)s refused, nothing loaded: it is not a '
               'usable "docker save" archive: %(reason)s. Upload the output '
               'of "docker save IMAGE" for exactly one image, with '
               '--container-format docker --disk-format raw.')


class ImageChecksumMismatch(nova_exception.ImageUnacceptable):
    msg_fmt = ('Image %(image_id)s failed verification: the %(algorithm)s '
               'of the %(size)d bytes downloaded from Glance is %(actual)s, '
               'Glance records %(expected)s. The data was corrupted or '
               'altered; nothing was loaded. Re-upload the image.')


class ImageDownloadFailed(DockerDriverError):
    msg_fmt = ('Downloading image %(image_id)s from Glance failed after '
               '%(size)d bytes: %(reason)s. Nothing was loaded; check that '
               'Glance is reachable and retry.')


class ImageLoadFailed(DockerDriverError):
    msg_fmt = ('The Docker engine did not load image %(image_id)s as '
               '%(tag)s: %(reason)s. Nothing was loaded; check the dockerd '
               'log and its free disk space.')


class UnsupportedVifType(DockerDriverError):
    msg_fmt = ('Port %(port_id)s has VIF type %(vif_type)s, which the '
               'Docker driver cannot plug. Supported: %(supported)s. Bind '
               'the port with the Open vSwitch mechanism driver (normal '
               'vnic_type).')


class PortWithoutFixedIp(DockerDriverError):
    msg_fmt = ('Port %(port_id)s has no fixed IP address: a container '
               'needs at least one. Add a subnet to network %(network)s or '
               'create the port with --fixed-ip.')


class OvsUnreachable(DockerDriverError):
    msg_fmt = ('Cannot reach Open vSwitch at %(connection)s: %(reason)s. '
               'Start it (ovs-ctl start) or fix [os_vif_ovs] '
               'ovsdb_connection.')


class OvsBridgeMissing(DockerDriverError):
    msg_fmt = ('Open vSwitch has no bridge %(bridge)s, which port '
               '%(port_id)s must be plugged into. Create it (ovs-vsctl '
               'add-br %(bridge)s) or fix the integration bridge name in '
               'the Neutron agent and [neutron] ovs_bridge.')


class VifPlugFailed(DockerDriverError):
    msg_fmt = ('Plugging port %(port_id)s of the container failed while '
               '%(step)s: %(reason)s. Nothing of this port was left behind.')


class NamespaceLinkFailed(DockerDriverError):
    msg_fmt = ('Cannot %(action)s the network namespace link %(path)s: '
               '%(reason)s. Check [docker] root_helper and that '
               'docker.filters is in the rootwrap filters_path.')


# -- images


class UnsafeImageArchive(nova_exception.ImageUnacceptable):
    # Nova keeps 255 characters of a fault: the problem comes first.
    msg_fmt = ('Image %(image_id)s refused, nothing loaded: its archive has '
               '%(reason)s. Upload the unmodified output of "docker save '
               'IMAGE" (one image).')


class ImageArchiveTooLarge(nova_exception.ImageUnacceptable):
    msg_fmt = ('Image %(image_id)s refused, nothing loaded: %(what)s '
               'exceeds the limit of %(limit)d. Upload a plain "docker save" '
               'archive; an operator may raise [docker] %(option)s.')


class ImageTagMismatch(DockerDriverError):
    msg_fmt = ('After loading image %(image_id)s, %(tag)s is %(actual)s, '
               'not the config %(expected)s its manifest names; the tag was '
               'removed. Check whether something else loads images into '
               'this engine.')


class ImageStoreUnsupported(DockerDriverError):
    msg_fmt = ('The Docker engine uses the %(store)s image store, which the '
               'Docker driver does not support: its loader honours '
               'index.json/oci-layout and image names inside an archive, '
               'so a tenant image could name another image. Turn the '
               'containerd image store off ("features": {"containerd-'
               'snapshotter": false} in daemon.json) and restart dockerd.')


class ImageLockPathUnset(DockerDriverError):
    msg_fmt = ('Image loads are serialised across nova-compute services '
               'with file locks, but no lock directory is configured: set '
               '[oslo_concurrency] lock_path (or [docker] image_lock_path) '
               'to a directory the nova-compute user can write.')


class SnapshotUploadFailed(DockerDriverError):
    msg_fmt = ('Uploading snapshot %(image_id)s of the container to Glance '
               'failed after %(size)d bytes: %(reason)s. Nothing of the '
               'snapshot was kept on the host.')


# -- containers and driver

class SandboxMissing(DockerDriverError):
    msg_fmt = ('Server %(instance_uuid)s has no sandbox container on this '
               'host (it was removed behind Nova\'s back): its network '
               'cannot be wired. Rebuild or delete the server.')


class ContainerEngineFailed(DockerDriverError):
    # Not InvalidInput: Nova reschedules the build to another host.
    msg_fmt = ('The Docker engine failed to %(what)s: %(reason)s. This is '
               'the engine\'s fault, not the image\'s: check the dockerd '
               'log on this host.')


class UnknownRuntime(DockerDriverError):
    msg_fmt = ('[docker] runtime is %(runtime)r but the Docker engine only '
               'knows %(known)s. Register it in the engine\'s daemon.json '
               '"runtimes" and restart dockerd, or clear the option.')


class InvalidEnvironmentValue(nova_exception.InvalidInput):
    msg_fmt = ('Instance metadata key %(key)r cannot become an environment '
               'variable of the container: %(reason)s.')


class InvalidImageProperty(nova_exception.ImageUnacceptable):
    msg_fmt = ('Image property %(name)s=%(value)r is invalid: %(reason)s.')


class RescueUnsupported(DockerDriverError):
    msg_fmt = ('Server %(instance_uuid)s cannot be rescued on this host: '
               '%(reason)s. Nothing was changed.')


class MigrationUnsupported(DockerDriverError):
    msg_fmt = ('The Docker driver cannot move server %(instance_uuid)s to '
               'host %(dest)s: %(reason)s. The server was left as it was.')


class MigrationDataInvalid(DockerDriverError):
    msg_fmt = ('The source host handed over migration data the Docker '
               'driver cannot read (%(reason)s): both hosts must run the '
               'same nova-docker release.')


class TransferImageUnavailable(DockerDriverError):
    # Nova keeps 255 characters of a fault: the advice comes first.
    msg_fmt = ('Transfer image %(image_id)s did not load here; it keeps '
               'the server\'s data (openstack server create --image '
               '%(image_id)s): %(reason)s')


class ResizeUnsupported(DockerDriverError):
    msg_fmt = ('The Docker driver cannot resize server %(instance_uuid)s to '
               'flavor %(flavor)s: %(reason)s. The server was left as it '
               'was.')


class ConfigDriveFailed(DockerDriverError):
    msg_fmt = ('Cannot write the config drive of server %(uuid)s: '
               '%(reason)s. Check that [docker] config_drive_dir is on a '
               'writable filesystem with free space.')


class UserDataScriptUnrunnable(nova_exception.InvalidInput):
    msg_fmt = ('The user-data script cannot be run before the image\'s '
               'command: %(reason)s. Give the image a command '
               '(os_command_line), or ask the operator for [docker] '
               'user_data_scripts = expose.')


class ConfigDriveUnmountable(nova_exception.InvalidInput):
    msg_fmt = ('The config drive cannot be mounted at %(path)s in this '
               'image: %(reason)s. Use an image where %(path)s is free or a '
               'directory, or boot without a config drive.')
