"""Verdicts as JUnit XML: a test suite per combination, a test case per check; failures carry the reason."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def junit_xml(verdicts, name: str = "edgekit") -> str:
    """``verdicts``: ``edgekit.check.Verdict`` records, in the order they should be listed."""
    suites: dict[str, list] = {}
    for v in verdicts:
        suites.setdefault(v.combination, []).append(v)
    root = ET.Element("testsuites", name=name, **_counts(verdicts))
    for combination, items in suites.items():
        suite = ET.SubElement(root, "testsuite", name=combination, **_counts(items))
        for v in items:
            case = ET.SubElement(suite, "testcase", classname=f"{name}.{combination}", name=v.name)
            if v.passed is False:
                ET.SubElement(case, "failure", message=v.message, type="check").text = v.message
            elif v.passed is None:
                ET.SubElement(case, "skipped", message=v.message)
            else:
                ET.SubElement(case, "system-out").text = v.message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _counts(verdicts) -> dict[str, str]:
    return {
        "tests": str(len(verdicts)),
        "failures": str(sum(v.passed is False for v in verdicts)),
        "errors": "0",
        "skipped": str(sum(v.passed is None for v in verdicts)),
    }
