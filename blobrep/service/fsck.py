"""``fsck``: the catalog against the stores, and what to do about every difference.

The catalog is the authority; the replicas must agree with it. For each gallery and region
checked, fsck finds:

* ``operation``: an operation whose process died (moved on by recovery, which opening the
  service runs; fsck reports what it did);
* ``manifest``: a replica the catalog counts complete for a version whose manifest is
  missing, damaged or not the pinned one;
* ``missing`` / ``corrupt``: a chunk such a manifest names that the replica lacks or holds bad
  (every chunk of every Completed version is read and verified, through the one read path);
* ``pack-missing`` / ``pack-corrupt`` / ``pack-size``: a pack such a manifest names that the
  replica lacks, holds with other bytes than its name (its digest) says or as something else
  than a regular file, or holds at another size than recorded (every pack is read whole and
  checked by size and digest, which covers every frame in it); ``what`` is the pack's key;
* ``unknown-manifest``: a manifest the catalog does not know there (its version was deleted,
  or never targeted that region or replica): a reader must never find one;
* ``temporary``: a temporary file older than the grace, left by a killed writer.

With ``repair``: chunks, packs and manifests are repaired from a good copy in the same region,
else from any other region (verified against the pin, a pack against its size and digest, or
patched with verified frames when no whole copy is left; a manifest written only after its
chunks and packs); a version that still cannot be served whole in a region is marked
``Failed`` there with the reason; unknown manifests are deleted (their chunks and packs go at
the next ``gc``); old temporaries are removed. A problem fsck repaired is reported as
repaired; the check is clean when nothing is left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from blobrep.core.access import Action
from blobrep.service.recovery import _Recovery

if TYPE_CHECKING:
    from blobrep.service.fsck_run import FsckReport
    from blobrep.service.home import RegionConfig
    from blobrep.storage.base import Store

#: Temporaries younger than this (seconds) may belong to a write in progress.
DEFAULT_GRACE: Final = 3600.0


class _Fsck(_Recovery):
    async def fsck(
        self,
        caller: str,
        *,
        gallery: str | None = None,
        location: str | None = None,
        repair: bool = False,
        grace: float = DEFAULT_GRACE,
    ) -> FsckReport:
        """Check (and with ``repair``, repair) the stores against the catalog; see the module docstring.

        Checking needs Reader, repairing Contributor: on the gallery, or else on definitions or
        versions in it, which are then checked alone (their manifests, the chunks those name,
        and the temporaries beside them; chunks nothing names are the gallery's business).
        Without ``gallery``, every gallery the caller can see is checked where it may be, and
        only the recovered operations of versions it can see are reported.

        Raises:
            ResourceNotFoundError: the region does not exist, or the gallery does not (said
                only to a caller that may see it).
            AccessDeniedError: the caller may check (or repair) nothing in the gallery (or,
                without ``gallery``, in any gallery it can see).
        """
        from blobrep.service._base import manifest_prefixes
        from blobrep.service.fsck_run import FsckProblem, FsckReport, _Run

        authorizer = await self._authorizer(caller)
        configs = await self._regions()
        if location is not None:
            configs = {(region := await self._region(location)).name: region}
        reaches = await self._reaches(authorizer, Action.WRITE if repair else Action.READ, gallery)
        recovered = [*self._recovered, *await self.recover()]
        self._recovered = ()
        problems = [
            FsckProblem("operation", "", "", "", str(done), "its process died; recovery moved it on", True)
            for done in recovered
            if authorizer.sees(done.version)
        ]
        # Every replica of every region, listed once: each region's donors are the others'.
        replicas = {
            name: await self._replica_stores(region, 0) for name, region in (await self._regions()).items()
        }
        run = _Run(self, repair, grace, problems, replicas)
        for where, versions in reaches:
            assert where.gallery.gallery is not None
            within = manifest_prefixes(where)
            await run.gallery(where.gallery.gallery, within, versions, list(configs.values()))
        return FsckReport(
            tuple(str(where.gallery.gallery) for where, _ in reaches),
            tuple(sorted(configs)),
            run.versions,
            run.chunks,
            tuple(problems),
            tuple(run.marked),
            run.packs,
        )

    async def _replica_stores(
        self, region: RegionConfig, at_least: int, *, repair: bool = False
    ) -> list[Store]:
        """Every replica of ``region`` the catalog knows of, and at least those its versions
        count on, in order (see :meth:`_known_stores`)."""
        return await self._known_stores(region, holding=at_least, repair=repair)
