"""Names of deployed VMs, and where a deployment's disks go below an output directory.

A VM deployed into an output directory gets a directory of its own, named as the VM, that
holds its disks: the OS disk, and each data disk beside it by its LUN. A scale set's
instances are named as ``az`` names them, the set's name and the instance's number::

    vm create -n web1 --output-dir D                     D/web1/osdisk.img
                                                         D/web1/lun0.img (a data disk at LUN 0)
    vmss create -n web --instance-count 3 --output-dir D D/web_0/osdisk.img
                                                         D/web_1/osdisk.img
                                                         D/web_2/osdisk.img

A valid name is one path component that stays inside the output directory: no ``/``, no
``..``, nothing hidden (a name starts with a letter or digit), nothing a shell or another
file system would read differently.
"""

from __future__ import annotations

import re
from typing import Final

from blobrep.core.names import MAX_LUN
from blobrep.errors import InvalidNameError

#: The name of a VM (or a scale set) when none is given.
DEFAULT_VM_NAME: Final = "vm"
#: The longest VM name (as Azure allows a Linux VM's).
MAX_VM_NAME_LENGTH: Final = 64
#: The file of a VM's OS disk, inside its directory.
OS_DISK: Final = "osdisk.img"

_VM_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DATA_DISK_RE: Final = re.compile(r"lun(0|[1-9][0-9]?)\.img")
_RULE: Final = (
    f"use 1 to {MAX_VM_NAME_LENGTH} letters, digits, '-', '_' and '.', starting with a letter or"
    " digit, not ending with '.' or '-' and without '..' (for example web1)"
)


def validate_vm_name(name: str) -> str:
    """Return ``name`` if it can name a VM (and its directory), else raise.

    Raises:
        InvalidNameError: it is empty, too long, or breaks the pattern (which keeps it one
            path component inside the output directory).
    """
    if not name:
        raise InvalidNameError(f"the VM name is empty: {_RULE}")
    if len(name) > MAX_VM_NAME_LENGTH:
        raise InvalidNameError(f"the VM name {name[:20]!r}... is {len(name)} characters long: {_RULE}")
    if _VM_NAME_RE.fullmatch(name) is None or name.endswith((".", "-")) or ".." in name:
        raise InvalidNameError(f"invalid VM name {name!r}: {_RULE}")
    return name


def validate_scale_set_name(name: str, count: int) -> str:
    """Return ``name`` if it can name a scale set of ``count`` instances: a valid VM name whose
    longest instance name (``{name}_{count-1}``) is a valid VM name too.

    Raises:
        InvalidNameError: naming the rule, or the longest instance name and how long it is.
    """
    validate_vm_name(name)
    longest = instance_name(name, max(count - 1, 0))
    if len(longest) > MAX_VM_NAME_LENGTH:
        raise InvalidNameError(
            f"the scale set name {name[:20]!r}... leaves no room for its instance numbers: instance"
            f" {longest[-12:]!r} would be named with {len(longest)} characters, over the"
            f" {MAX_VM_NAME_LENGTH} a VM name may have; use a name of at most"
            f" {MAX_VM_NAME_LENGTH - len(longest) + len(name)} characters"
        )
    return name


def instance_name(name: str, index: int) -> str:
    """The name of instance ``index`` (from 0) of the scale set ``name``: ``{name}_{index}``."""
    return f"{name}_{index}"


def os_disk(name: str) -> str:
    """Where the OS disk of the VM ``name`` (a valid VM name, or an instance name made of one)
    goes, relative to the output directory."""
    return f"{name}/{OS_DISK}"


def lun_of_data_disk(file_name: str) -> int | None:
    """The LUN of a data disk's file name in a VM's directory (``lun3.img``: 3), or None for
    any other name (``lun03.img``, ``lun64.img`` and ``osdisk.img`` included)."""
    found = _DATA_DISK_RE.fullmatch(file_name)
    if found is None:
        return None
    lun = int(found.group(1))
    return lun if lun <= MAX_LUN else None


def data_disk(name: str, lun: int) -> str:
    """Where the data disk at ``lun`` of the VM ``name`` goes, relative to the output directory:
    beside its OS disk, ``{name}/lun{lun}.img``."""
    return f"{name}/lun{lun}.img"
