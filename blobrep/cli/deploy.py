"""``blobrep vm create``, ``blobrep vmss create`` and ``blobrep scrub``: reading versions in a region."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING, Any

from blobrep.cli import _types
from blobrep.cli._common import call, emit
from blobrep.cli.output import field_rows
from blobrep.cli.progress import ProgressBar
from blobrep.core.selection import Policy, parse_policy
from blobrep.core.units import format_size
from blobrep.core.vm_names import DEFAULT_VM_NAME, instance_name
from blobrep.errors import InvalidParameterError
from blobrep.service.views import deployment_summary_view, deployment_view
from blobrep.storage.files import translate

if TYPE_CHECKING:
    from blobrep.service import GalleryService

POLICIES = ", ".join(policy.value for policy in Policy)


def register(commands: Any) -> None:
    vm = commands.add_parser("vm", help="deploy one VM disk from an image version")
    vm_create = vm.add_subparsers(dest="action", required=True, metavar="ACTION").add_parser(
        "create", help="read a version in a region into a sparse disk file (or discard it)"
    )
    _image_options(vm_create)
    _name_option(vm_create, "the VM's name (default: vm); with --output-dir D its disk is D/NAME/osdisk.img")
    where = vm_create.add_mutually_exclusive_group()
    where.add_argument(
        "--output",
        type=_types.output_file,
        default=None,
        help="disk file to write (default: read and discard)",
    )
    where.add_argument(
        "--output-dir",
        type=_types.directory,
        default=None,
        help="write the disks to NAME/osdisk.img and NAME/lunN.img in this directory (made if missing)",
    )
    vm_create.set_defaults(handler=_vm_create)

    vmss = commands.add_parser("vmss", help="deploy a scale set: N VM disks at once")
    vmss_create = vmss.add_subparsers(dest="action", required=True, metavar="ACTION").add_parser(
        "create", help="read a version N times at once, spread over the region's replicas"
    )
    _image_options(vmss_create)
    vmss_create.add_argument(
        "--instance-count",
        type=_types.Integer(1, _types.MAX_INSTANCE_COUNT),
        required=True,
        help="deployments at once (1..1000)",
    )
    _name_option(
        vmss_create,
        "the scale set's name (default: vm); its instances are NAME_0, NAME_1, ...,"
        " and with --output-dir D instance i's disk is D/NAME_i/osdisk.img",
    )
    vmss_create.add_argument(
        "--output-dir",
        type=_types.directory,
        default=None,
        help="write each instance's disks to NAME_i/osdisk.img, NAME_i/lunN.img in this directory",
    )
    vmss_create.set_defaults(handler=_vmss_create)

    scrub = commands.add_parser("scrub", help="verify every chunk of every replica in a region")
    scrub.add_argument("--location", "-l", type=_types.region, required=True, help="the region")
    scrub.add_argument("--gallery-name", "-r", dest="gallery", default=None, help="only this gallery")
    scrub.add_argument("--repair", action="store_true", help="rewrite bad copies from healthy replicas")
    scrub.set_defaults(handler=_scrub)


def _policy(text: str) -> Policy:
    try:
        return parse_policy(text)
    except InvalidParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _name_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--name", "-n", type=_types.vm_name, default=DEFAULT_VM_NAME, help=help_text)


def _make_output_dir(args: argparse.Namespace) -> None:
    if args.output_dir is not None:
        with translate(args.output_dir, "create the output directory"):
            args.output_dir.mkdir(parents=True, exist_ok=True)


def _image_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--image", required=True, help="a version id, .../versions/latest, or a definition id (= latest)"
    )
    parser.add_argument(
        "--location",
        "-l",
        type=_types.region,
        default=None,
        help="region to read in (default: the source region)",
    )
    parser.add_argument(
        "--policy", type=_policy, default=Policy.LEAST_LOADED, help=f"replica selection: {POLICIES}"
    )


def _vm_create(args: argparse.Namespace) -> int:
    _make_output_dir(args)
    with ProgressBar("deploying") as bar:
        result = call(
            args,
            lambda service, caller: service.deploy_vm(
                caller,
                args.image,
                location=args.location,
                output=args.output,
                output_dir=args.output_dir,
                name=args.name,
                policy=args.policy,
                progress=bar,
            ),
        )
    document = {"name": args.name, **deployment_view(result)}
    return emit(args, document, field_rows(document))


def _vmss_create(args: argparse.Namespace) -> int:
    _make_output_dir(args)
    with ProgressBar(f"{args.instance_count} VMs") as bar:

        async def job(service: GalleryService, caller: str) -> Any:
            return await service.deploy_scale_set(
                caller,
                args.image,
                args.instance_count,
                location=args.location,
                output_dir=args.output_dir,
                name=args.name,
                policy=args.policy,
                progress=bar,
            )

        summary = call(args, job)
    outputs = summary.outputs or (None,) * summary.count
    data_disks = summary.data_disk_outputs or ((),) * summary.count
    instances = [
        {"name": instance_name(args.name, index), "output": output}
        | ({"dataDisks": list(disks)} if disks else {})
        for index, (output, disks) in enumerate(zip(outputs, data_disks, strict=True))
    ]
    document = {"name": args.name, **deployment_summary_view(summary), "instances": instances}
    stats = summary.statistics
    rows = [
        {
            "replica": replica,
            "requests": served.requests,
            "served": format_size(served.bytes_served),
            "failures": served.failures,
        }
        for replica, served in stats.replicas.items()
    ]
    emit(args, document, rows)
    if summary.errors:
        # The one line of a failed command; what did succeed is in the document on stdout.
        sys.stderr.write(
            f"blobrep: error: {summary.errors} of {summary.count} deployment(s) failed:"
            f" {summary.failures[0]}\n"
        )
        return 1
    p50 = "-" if summary.p50 is None else f"{summary.p50:.3f} s"
    p99 = "-" if summary.p99 is None else f"{summary.p99:.3f} s"
    sys.stderr.write(
        f"{summary.succeeded} of {summary.count} deployments done: p50 {p50}, p99 {p99},"
        f" makespan {summary.makespan:.3f} s, {stats.failovers} failover(s), {stats.repairs} repair(s)\n"
    )
    return 0


def _scrub(args: argparse.Namespace) -> int:
    reports = call(
        args,
        lambda service, caller: service.scrub(
            caller, args.location, gallery=args.gallery, repair=args.repair
        ),
    )
    documents = [dataclasses.asdict(report) | {"ok": report.ok} for report in reports]
    rows = [
        {
            "gallery": report.gallery,
            "replica": problem.replica,
            "kind": problem.kind,
            "what": problem.key_or_digest,
            "repaired": problem.repaired,
            "detail": problem.detail,
        }
        for report in reports
        for problem in report.problems
    ]
    emit(args, documents, rows or [{"result": f"{len(reports)} galleries scrubbed, no problem"}])
    bad = [report for report in reports if not report.ok]
    if bad:
        count = sum(report.unrepairable if args.repair else len(report.problems) for report in bad)
        sys.stderr.write(f"blobrep: error: {count} problem(s) left in {args.location}\n")
        return 1
    return 0
