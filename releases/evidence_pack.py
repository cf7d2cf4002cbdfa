"""The evidence pack of one change request: a zip an auditor takes away and verifies alone
(`python -m audit.offline_verify --evidence pack.zip`), without seeing any other event's body.

- `evidence.pdf`: the facts for people; `evidence.json`: the same facts as data;
- `events.jsonl`: every audit event concerning the change, its build and its deployments, each
  with its Merkle inclusion proof against the signed head;
- `head.json`: the tree head signed when the pack was built (size, tip hash, root), and a
  manifest signing the sha256 of every other file with the same key;
- `public_key.pem`: the key that signed it (pin the one the portal publishes with
  `--public-key`).
"""

import hashlib
import io
import json
import zipfile

from django.utils import timezone

from audit import keys
from audit.chain import evidence_manifest_message, format_timestamp
from audit.export import signed_head
from audit.services import proof_tree, verified_since_latest_head
from releases.evidence_pdf import evidence_pdf
from releases.models import ChangeRequest
from releases.selectors.evidence import change_request_evidence

PACK_FORMAT = "gatehouse-evidence/v1"


def _json(data) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode()


def evidence_pack_build(*, change_request: ChangeRequest) -> tuple[str, bytes]:
    """The pack's file name and bytes. The trail is verified since its latest signed head
    before anything is signed (`Conflict` `chain_broken` otherwise)."""
    report = verified_since_latest_head()
    tree = proof_tree(size=report.tip_seq, root=report.frontier.root())
    tip_hash = report.tip_hash
    evidence = change_request_evidence(change_request=change_request)
    generated_at = format_timestamp(timezone.now())
    head = {**signed_head(tree, tree.size, tip_hash), "generated_at": generated_at}
    lines, seqs = [], []
    for seq, occurred_at, prev_hash, hash_, body in evidence.events.filter(
        seq__lte=tree.size
    ).values_list("seq", "occurred_at", "prev_hash", "hash", "body"):
        seqs.append(seq)
        record = {
            "seq": seq,
            "occurred_at": format_timestamp(occurred_at),
            "prev_hash": prev_hash,
            "hash": hash_,
            "body": body,
            "proof": [node.hex() for node in tree.inclusion_proof(seq - 1)],
        }
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    number = evidence.change_request.number
    facts = {
        "format": PACK_FORMAT,
        "generated_at": generated_at,
        **evidence.facts,
        "events": seqs,
    }
    files = {
        "evidence.json": _json(facts),
        "evidence.pdf": evidence_pdf(evidence.facts, head=head, events=len(seqs)),
        "events.jsonl": ("\n".join(lines) + "\n").encode() if lines else b"",
        "public_key.pem": keys.public_key_pem().encode(),
    }
    digests = {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}
    head["files"] = digests
    head["manifest_signature"] = keys.sign(evidence_manifest_message(digests, head["root"]))
    head["change_request"] = number
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as pack:
        for name, content in files.items():
            pack.writestr(name, content)
        pack.writestr("head.json", _json(head))
    return f"{number}-evidence.zip", out.getvalue()
