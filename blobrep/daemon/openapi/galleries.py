"""Paths of ``/openapi.json``: health, metrics, the document itself, galleries and image definitions."""

from __future__ import annotations

from blobrep.daemon.openapi.shapes import (
    DELETES,
    JSON,
    WRITES,
    answer,
    created_or_updated,
    deleted,
    failures,
    listing,
    operation,
    ref,
)


def operability() -> JSON:
    status = {"type": "string", "enum": ["ok", "unavailable"]}
    health = {"type": "object", "properties": {"status": status}, "required": ["status"]}
    unready = {
        "type": "object",
        "properties": {
            "status": status,
            "error": {"type": "string", "description": "Why the catalog cannot be read."},
            "regions": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Why, by region.",
            },
        },
        "required": ["status"],
    }
    metrics = {"type": "string"}
    return {
        "/livez": {
            "get": operation(
                "Health_Live",
                "Alive: the process answers",
                {"200": answer("Alive.", health)},
                tag="Operability",
                public=True,
            )
        },
        "/readyz": {
            "get": operation(
                "Health_Ready",
                "Ready: the catalog is open and every region's storage can be reached",
                {
                    "200": answer("Ready.", health),
                    "503": answer("Not ready: the catalog or the regions that fail, and why.", unready),
                },
                tag="Operability",
                public=True,
            )
        },
        "/metrics": {
            "get": operation(
                "Metrics_Get",
                "Prometheus metrics",
                {
                    "200": {
                        **answer(
                            "Requests by route and status, latencies, bytes, replicas, replication, lag."
                        ),
                        "content": {
                            "text/plain": {"schema": metrics},
                            "application/openmetrics-text": {"schema": metrics},
                        },
                    }
                },
                description="The Prometheus text format, or OpenMetrics when `Accept` asks for it.",
                tag="Operability",
                public=True,
            )
        },
        "/openapi.json": {
            "get": operation(
                "OpenApi_Get",
                "This document",
                {"200": answer("OpenAPI 3.1.", {"type": "object"})},
                tag="Operability",
                public=True,
            )
        },
    }


def galleries() -> JSON:
    gallery, image = ("gallery",), ("gallery", "image")
    return {
        "/galleries": {"get": listing("Galleries_List", "Galleries", "Gallery", "Galleries")},
        "/galleries/{gallery}": {
            "get": operation(
                "Galleries_Get",
                "Show a gallery",
                {"200": answer("The gallery.", ref("Gallery")), **failures(400, 404)},
                tag="Galleries",
                parameters=gallery,
            ),
            "put": operation(
                "Galleries_CreateOrUpdate",
                "Create a gallery, or update its description",
                {**created_or_updated("Gallery"), **failures(*WRITES, 409)},
                tag="Galleries",
                parameters=(*gallery, "createOnly"),
                body="GalleryBody",
                description="A gallery's location is fixed at creation: a PUT naming another one is a 400.",
            ),
            "patch": operation(
                "Galleries_Update",
                "Update a gallery's description",
                {"200": answer("The gallery.", ref("Gallery")), **failures(*WRITES)},
                tag="Galleries",
                parameters=gallery,
                body="GalleryPatch",
            ),
            "delete": operation(
                "Galleries_Delete",
                "Delete an empty gallery",
                {**deleted("gallery"), **failures(*DELETES)},
                tag="Galleries",
                parameters=gallery,
            ),
        },
        "/galleries/{gallery}/images": {
            "get": listing(
                "GalleryImages_List",
                "Image definitions",
                "ImageDefinition",
                "Image definitions",
                *gallery,
                extra=failures(404),
            ),
        },
        "/galleries/{gallery}/images/{image}": {
            "get": operation(
                "GalleryImages_Get",
                "Show an image definition",
                {"200": answer("The image definition.", ref("ImageDefinition")), **failures(400, 404)},
                tag="Image definitions",
                parameters=image,
            ),
            "put": operation(
                "GalleryImages_CreateOrUpdate",
                "Create an image definition, or update it",
                {**created_or_updated("ImageDefinition"), **failures(*WRITES, 409)},
                tag="Image definitions",
                parameters=(*image, "createOnly"),
                body="ImageDefinitionBody",
            ),
            "patch": operation(
                "GalleryImages_Update",
                "Update an image definition",
                {"200": answer("The image definition.", ref("ImageDefinition")), **failures(*WRITES, 409)},
                tag="Image definitions",
                parameters=image,
                body="ImageDefinitionBody",
            ),
            "delete": operation(
                "GalleryImages_Delete",
                "Delete an image definition without versions",
                {**deleted("image definition"), **failures(*DELETES)},
                tag="Image definitions",
                parameters=image,
            ),
        },
    }
