"""Reads rendered messages back with Python's email package (policy=default) and checks
that every value survives and the parser reports zero defects.

Usage: python3 check_with_python.py MANIFEST.json
The manifest is a list of {"eml": PATH, "expect": {...}} written by the Rust test, with
"utf8": true for a message with RFC 6532 UTF-8 headers.
Prints one line per message and exits non-zero on the first mismatch list.
"""
import json
import sys
from email import message_from_bytes, message_from_string, policy
from email.header import decode_header, make_header
from email.utils import getaddresses


def addresses(header, raw):
    """Addresses as [display name, addr-spec] pairs.

    policy=default parses the header (and reports defects). Its phrase parser has a known
    bug: it keeps the folding whitespace between two adjacent encoded words of a display
    name, which RFC 2047 section 6.2 says to drop (CPython even fails to round-trip its own
    output). Where a display name is made of encoded words, the name is therefore decoded
    with the email package's decode_header, which follows section 6.2. (mailroom encodes
    names word by word, so this only matters for a run of non-ASCII words longer than one
    encoded word, such as a long Japanese name.)
    """
    if header is None:
        return []
    parsed = [[a.display_name or None, a.addr_spec] for a in header.addresses]
    legacy = getaddresses([raw])
    if len(legacy) == len(parsed):
        for pair, (raw_name, _) in zip(parsed, legacy):
            if "=?" in raw_name:
                pair[0] = str(make_header(decode_header(raw_name))) or None
    return parsed


def norm(text):
    return None if text is None else text.replace("\r\n", "\n")


def collect_defects(msg):
    found = []
    for part in msg.walk():
        found.extend(repr(d) for d in part.defects)
        for name, value in part.items():
            found.extend(f"{name}: {d!r}" for d in getattr(value, "defects", ()))
    return found


def body_text(msg, subtype):
    for part in msg.walk():
        if part.get_content_type() == f"text/{subtype}" and not part.is_attachment():
            return part.get_content()
    return None


def check(msg, expect, where):
    errors = []

    def same(what, got, want):
        if got != want:
            errors.append(f"{where}: {what}: got {got!r}, want {want!r}")

    def raw(name):
        return " ".join(v for k, v in msg.raw_items() if k.lower() == name).replace("\r\n", "")

    same("from", addresses(msg["from"], raw("from")), expect["from"])
    same("sender", addresses(msg["sender"], raw("sender")), expect["sender"])
    for field in ("to", "cc", "reply_to"):
        name = field.replace("_", "-")
        same(field, addresses(msg[name], raw(name)), expect[field])
    same("bcc header", msg["bcc"], None)
    same("subject", msg["subject"], expect["subject"])
    same("text", norm(body_text(msg, "plain")), norm(expect["text"]))
    same("html", norm(body_text(msg, "html")), norm(expect["html"]))
    same("content type", msg.get_content_type(), expect["content_type"])
    for name, value in expect["headers"]:
        if value not in [str(v) for v in msg.get_all(name, [])]:
            errors.append(f"{where}: header {name}: {msg.get_all(name)!r} lacks {value!r}")
    atts = []
    nested = []
    for part in msg.walk():
        if part.get_content_maintype() == "multipart" or part is msg:
            continue
        disp = part.get_content_disposition()
        if disp in ("attachment", "inline") and part.get_content_type() != "message/rfc822":
            payload = part.get_payload(decode=True)
            cid = part["content-id"]
            atts.append([part.get_filename(), part.get_content_type(), payload.hex(), disp == "inline", str(cid) if cid else None])
        if part.get_content_type() == "message/rfc822":
            nested.append(part.get_payload(0))
    atts.sort(key=lambda a: json.dumps(a, separators=(",", ":"), ensure_ascii=False))
    same("attachments", atts, expect["attachments"])
    same("nested count", len(nested), len(expect["nested"]))
    for i, (inner, want) in enumerate(zip(nested, expect["nested"])):
        errors.extend(check(inner, want, f"{where}/nested[{i}]"))
    return errors


def main():
    manifest = json.load(open(sys.argv[1], encoding="utf-8"))
    failures = []
    for item in manifest:
        raw = open(item["eml"], "rb").read()
        if item.get("utf8"):
            # RFC 6532 UTF-8 headers: the bytes parser would read them as undecodable bytes.
            msg = message_from_string(raw.decode("utf-8"), policy=policy.default)
        else:
            msg = message_from_bytes(raw, policy=policy.default)
        errors = [f"{item['eml']}: defect {d}" for d in collect_defects(msg)]
        errors += check(msg, item["expect"], item["eml"])
        print(("ok   " if not errors else "FAIL ") + item["eml"])
        failures += errors
    for f in failures:
        print(f)
    sys.exit(1 if failures else 0)


main()
