"""The names in a VM's directory: a data disk's file name read back as its LUN, and a scale
set's name checked against the longest name of its instances."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.names import MAX_LUN
from blobrep.core.vm_names import (
    MAX_VM_NAME_LENGTH,
    OS_DISK,
    data_disk,
    instance_name,
    lun_of_data_disk,
    validate_scale_set_name,
    validate_vm_name,
)
from blobrep.errors import InvalidNameError


@given(st.integers(0, MAX_LUN))
def test_every_data_disk_file_reads_back_as_its_lun(lun: int) -> None:
    assert lun_of_data_disk(data_disk("web", lun).split("/")[1]) == lun


@pytest.mark.parametrize(
    "name", [OS_DISK, "lun64.img", "lun03.img", "lun.img", "lun1.img.tmp", "LUN1.img", "lun-1.img", "notes"]
)
def test_other_file_names_are_not_data_disks(name: str) -> None:
    assert lun_of_data_disk(name) is None


def test_a_scale_set_name_leaves_room_for_its_longest_instance_number() -> None:
    fits = "w" * (MAX_VM_NAME_LENGTH - 3)  # "_99" makes it 64
    assert validate_scale_set_name(fits, 100) == fits
    assert len(validate_vm_name(instance_name(fits, 99))) == MAX_VM_NAME_LENGTH
    with pytest.raises(InvalidNameError, match=f"use a name of at most {MAX_VM_NAME_LENGTH - 4} characters"):
        validate_scale_set_name(fits, 1000)
    with pytest.raises(InvalidNameError, match="66 characters"):
        validate_scale_set_name("w" * MAX_VM_NAME_LENGTH, 1)
    with pytest.raises(InvalidNameError, match="invalid VM name"):
        validate_scale_set_name("../up", 2)
