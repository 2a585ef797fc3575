"""A day of the service, through the Python client generated from api-spec/openapi.yaml only.

    python scenario.py BASE_URL HOLDER_TOKEN

An authority issues a business licence; a department verifies it with its purpose, applies for
a grant, and looks the licence up, checks claimed data and fetches it under the grant; the holder
sees who used the licence, authorises a department and withdraws it, and files an objection; the
authority answers the objection and revokes the licence, which then verifies INVALID; an auditor
fetches a checkpoint and proves the revocation's entry in it and the log's growth. Every answer
is parsed by the generated models; any surprise exits non-zero with what was expected.
"""

import base64
import hashlib
import json
import sys
import time
from datetime import datetime, timedelta, timezone

from zhengyin_client import AuthenticatedClient
from zhengyin_client.api.access import (
    apply_for_grant,
    list_grants,
    list_service_items,
    approve_grant,
    check_licence_data,
    fetch_licence,
    look_up_licences,
)
from zhengyin_client.api.holders import authorise, my_authorisations, my_use_records, withdraw_authorisation
from zhengyin_client.api.licences import issue_licence, revoke_licence
from zhengyin_client.api.log import get_checkpoint, get_consistency_proof, get_inclusion_proof, get_log_entries
from zhengyin_client.api.objections import act_on_objection, file_objection, list_objections
from zhengyin_client.api.verification import verify_licence
from zhengyin_client.models import (
    AuthorisationList,
    AuthoriseRequest,
    Decision,
    GrantApplication,
    GrantList,
    IssueRequest,
    LicenceEnvelope,
    LookupAnswer,
    ObjectionAction,
    ObjectionFiling,
    ObjectionViewList,
    Problem,
    RevokeRequest,
    ServiceItemList,
    UseRecordList,
    UseRequest,
    VerificationReport,
)

TYPE = "11100000000013338W032"
HOLDER = "91350100M000100Y43"
ITEM = "220100-FOOD-001"


def expect(response, status, model):
    """The parsed answer, after checking its status and type."""
    if response.status_code != status or not isinstance(response.parsed, model):
        sys.exit(
            f"expected {status} {model.__name__}, got {response.status_code}: {response.content[:400]!r}"
        )
    return response.parsed


def leaf_hash(entry):
    """RFC 9162 §2.1.1: the hash of a log entry."""
    return hashlib.sha256(b"\x00" + entry).digest()


def inclusion_root(index, size, leaf, path):
    """RFC 9162 §2.1.3.2: the root an inclusion proof leads to (written from the RFC)."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def until(days):
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def main(base_url, holder_token):
    client = lambda token: AuthenticatedClient(base_url=base_url, token=token)  # noqa: E731
    authority = client("demo-authority-p256")  # issues and defines 营业执照 in the demo
    department = client("demo-verifier")
    holder = client(holder_token)
    auditor = client("demo-auditor")

    number = "PY" + datetime.now().strftime("%H%M%S%f")
    issued = expect(
        issue_licence.sync_detailed(
            client=authority,
            body=IssueRequest.from_dict(
                {
                    "type_code": TYPE,
                    "number": number,
                    "holder": {"name": "吉林示例科技有限公司", "code": HOLDER, "code_type": "001"},
                    "valid_until": "2046-11-21",
                    "face": {
                        "company_name": "吉林示例科技有限公司",
                        "company_form": "有限责任公司",
                        "legal_representative": "张三",
                        "established": "2020-02-29",
                        "address": "长春市示例路1号",
                    },
                }
            ),
        ),
        201,
        LicenceEnvelope,
    )
    licence_id = issued.id

    def verify():
        return expect(
            verify_licence.sync_detailed(
                client=department, body=issued.licence, service_item=ITEM, use_cause="办理食品经营许可"
            ),
            200,
            VerificationReport,
        ).verdict

    assert verify() == "VALID"

    # Without a grant the one interface refuses; with one it answers.
    use = UseRequest.from_dict({"service_item": ITEM, "use_cause": "核验营业执照", "id": licence_id})
    expect(look_up_licences.sync_detailed(TYPE, client=department, body=use), 403, Problem)
    grant = expect(
        apply_for_grant.sync_detailed(
            client=department,
            body=GrantApplication.from_dict(
                {
                    "type_code": TYPE,
                    "fields": ["company_name", "legal_representative", "address"],
                    "service_items": [ITEM],
                    "purpose": "《食品经营许可和备案管理办法》",
                    "until": until(30),
                }
            ),
        ),
        201,
        object,
    )
    expect(approve_grant.sync_detailed(grant.id, client=authority, body=Decision.from_dict({})), 200, object)
    found = expect(look_up_licences.sync_detailed(TYPE, client=department, body=use), 200, LookupAnswer)
    assert found.licences[0].to_dict()["face"]["company_name"] == "吉林示例科技有限公司", found
    claimed = UseRequest.from_dict(
        {
            "service_item": ITEM,
            "use_cause": "核验申请材料",
            "id": licence_id,
            "claims": {"company_name": "吉林示例科技有限公司", "legal_representative": "李四"},
        }
    )
    checked = expect(check_licence_data.sync_detailed(TYPE, client=department, body=claimed), 200, LookupAnswer)
    assert "李四" not in str(checked.to_dict()), checked
    # Fetching the signed licence needs a grant of every field: this one has three.
    expect(fetch_licence.sync_detailed(TYPE, client=department, body=use), 403, Problem)

    # The holder sees those uses, authorises a department for one service item and withdraws it.
    records = expect(my_use_records.sync_detailed(client=holder), 200, UseRecordList).use_records
    assert any(r.department == "示例审批系统" for r in records), records
    authorisation = expect(
        authorise.sync_detailed(
            client=holder,
            body=AuthoriseRequest.from_dict(
                {"licence": licence_id, "department": "示例审批系统", "service_item": ITEM, "until": until(7)}
            ),
        ),
        201,
        object,
    )
    withdrawn = expect(withdraw_authorisation.sync_detailed(authorisation.id, client=holder), 200, object)
    assert withdrawn.to_dict()["withdrawn"], withdrawn

    # The holder disputes the address; the authority takes the objection up and revokes.
    objection = expect(
        file_objection.sync_detailed(
            client=holder,
            body=ObjectionFiling.from_dict(
                {"licence": licence_id, "fields": ["address"], "kind": "inaccurate", "statement": "住所有误"}
            ),
        ),
        201,
        object,
    )
    objection_id = objection.to_dict()["objection"]["id"]
    accepted = expect(
        act_on_objection.sync_detailed(
            objection_id, client=authority, body=ObjectionAction.from_dict({"action": "accept"})
        ),
        200,
        object,
    )
    assert accepted.to_dict()["state"] == "accepted", accepted
    revoked = expect(
        revoke_licence.sync_detailed(
            licence_id,
            client=authority,
            body=RevokeRequest.from_dict({"reason": "吊销", "note": "生成客户端场景"}),
        ),
        200,
        LicenceEnvelope,
    )
    assert verify() == "INVALID"

    # The auditor: the revocation's entry is in the signed log, and the log only grew.
    index = revoked.log_index
    assert isinstance(index, int), revoked
    deadline = time.monotonic() + 30
    while True:  # checkpoints are signed periodically: wait for one that covers the entry
        note = expect(get_checkpoint.sync_detailed(client=auditor), 200, str)
        size = int(note.splitlines()[1])
        if index < size:
            break
        if time.monotonic() > deadline:
            sys.exit(f"no checkpoint covers entry {index} after 30 s (size {size})")
        time.sleep(0.2)
    root = base64.b64decode(note.splitlines()[2])
    entry = expect(get_log_entries.sync_detailed(client=auditor, start=index, end=index + 1), 200, object)
    entry = base64.b64decode(entry.to_dict()["entries"][0])
    assert json.loads(entry)["event"] == "licence.revoked", entry
    proof = expect(get_inclusion_proof.sync_detailed(client=auditor, index=index, size=size), 200, object)
    path = [base64.b64decode(h) for h in proof.to_dict()["proof"]]
    assert inclusion_root(index, size, leaf_hash(entry), path) == root, "the inclusion proof fails"
    consistency = expect(get_consistency_proof.sync_detailed(client=auditor, first=index + 1, second=size), 200, object)
    assert len(consistency.to_dict()["proof"]) > 0 or index + 1 == size, consistency
    # The typed lists parse as the spec says.
    assert expect(list_grants.sync_detailed(client=department), 200, GrantList).grants
    assert expect(list_service_items.sync_detailed(client=department), 200, ServiceItemList).service_items
    assert expect(my_authorisations.sync_detailed(client=holder), 200, AuthorisationList).authorisations
    assert expect(list_objections.sync_detailed(client=holder), 200, ObjectionViewList).objections
    print(f"scenario passed: {licence_id} issued, used, disputed, revoked; log size {size}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
