//! The published OpenAPI document (`/openapi.json`) and its browsable page (`/docs`).

use utoipa::OpenApi;

/// Top-level document; paths are added by the route groups themselves.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "Real-time customer profile engine with an Adobe Experience Platform compatible API. \
                       Data routes need `x-gw-ims-org-id` and `x-sandbox-name`; with keys configured, \
                       `x-api-key` and `Authorization: Bearer`.",
    ),
    tags(
        (name = "operations", description = "Health, readiness, metrics"),
        (name = "sandboxes", description = "AEP Sandbox management API"),
    )
)]
pub struct ApiDoc;
