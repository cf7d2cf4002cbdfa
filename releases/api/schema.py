"""What drf-spectacular cannot read from the releases' serializers: the links between the
change request operations (filing one answers the number that reads it, its sign-offs and the
deployments made under it), and that a build is named by its version or by its digest."""

# A version, with a digest that the gate then checks against it (`digest_mismatch`), or the
# digest alone, which finds the version.
BUILD_NAMED = {
    "oneOf": [
        {"required": ["version"]},
        {"required": ["artifact_sha256"], "not": {"required": ["version"]}},
    ]
}
BUILD_QUESTIONS = ("GateInputRequest", "DeploymentInputRequest")
# A normal change has its window; an emergency change its incident (and no window needed).
CHANGE_KINDS = {
    "oneOf": [
        {
            "properties": {
                "kind": {"enum": ["normal"]},
                "window_start": {"type": "string"},
                "window_end": {"type": "string"},
            },
            "required": ["window_start", "window_end"],
        },
        {
            "properties": {
                "kind": {"enum": ["emergency"]},
                "incident_ref": {"type": "string", "pattern": "[^\\s]"},
            },
            "required": ["kind", "incident_ref"],
        },
    ]
}

CHANGE_REQUEST_LINKS = {
    "ReadChangeRequest": {
        "operationId": "api_v1_change_requests_retrieve",
        "parameters": {"number": "$response.body#/number"},
        "description": "The change request just filed.",
    },
    "ReadSignOffs": {
        "operationId": "v1_change_request_sign_offs_list",
        "parameters": {"number": "$response.body#/number"},
        "description": "Its sign-offs, in the order given.",
    },
    "ReadDeployments": {
        "operationId": "v1_deployments_list",
        "parameters": {"change_request": "$response.body#/number"},
        "description": "The deployments made under it.",
    },
}


def releases_schema(result, generator, request, public):
    """Adds the links to the answers that carry a change request, and the way a build is
    named to the inputs that name one."""
    schemas = result.get("components", {}).get("schemas", {})
    for name in BUILD_QUESTIONS:
        if name in schemas:
            schemas[name].update(BUILD_NAMED)
    admission = result["paths"].get("/api/v1/platforms/kubernetes/admission/", {}).get("post")
    if admission is not None:
        # Without a review there is nothing to answer: 400 malformed_admission_review.
        admission["requestBody"]["required"] = True
    if "ChangeRequestInputRequest" in schemas:
        schemas["ChangeRequestInputRequest"].update(CHANGE_KINDS)
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            if operation.get("operationId") not in {
                "api_v1_change_requests_create",
                "api_v1_change_requests_retrieve",
            }:
                continue
            for status in ("200", "201"):
                if status in operation.get("responses", {}):
                    links = dict(CHANGE_REQUEST_LINKS)
                    if operation["operationId"] == "api_v1_change_requests_retrieve":
                        links.pop("ReadChangeRequest")
                    operation["responses"][status]["links"] = links
    return result
