"""A structural check of JUnit XML against the schema CI servers read."""

import xml.etree.ElementTree as ET

# The common JUnit XSD (Jenkins/Ant junit-10, xunit "JUnit.xsd"): children in this order, required attributes.
CHILDREN = {
    "testsuites": ("testsuite",),
    "testsuite": ("properties", "testcase", "system-out", "system-err"),
    "properties": ("property",),
    "testcase": ("skipped", "error", "failure", "system-out", "system-err"),
    "property": (),
    "failure": (),
    "error": (),
    "skipped": (),
    "system-out": (),
    "system-err": (),
}
SINGLE = {"properties", "system-out", "system-err", "skipped"}
REQUIRED = {
    "testsuites": ("name", "tests", "failures", "errors", "time"),
    "testsuite": ("name", "tests", "failures", "errors", "skipped", "time", "timestamp"),
    "testcase": ("classname", "name", "time"),
    "property": ("name", "value"),
    "failure": ("message", "type"),
    "skipped": ("message",),
}
NONNEGATIVE_INT = ("tests", "failures", "errors", "skipped")


def check_junit_schema(element: ET.Element, tag: str = "testsuites") -> None:
    assert element.tag == tag
    for attribute in REQUIRED.get(tag, ()):
        assert attribute in element.attrib, f"<{tag}> lacks {attribute}"
    for attribute in NONNEGATIVE_INT:
        if attribute in element.attrib:
            assert element.get(attribute).isdigit(), f"<{tag} {attribute}={element.get(attribute)!r}>"
    if "time" in element.attrib:
        assert float(element.get("time")) >= 0
    allowed = CHILDREN[tag]
    if not allowed:
        assert len(element) == 0, f"<{tag}> has children"
    tags = [child.tag for child in element]
    assert set(tags) <= set(allowed), f"<{tag}> has {set(tags) - set(allowed)}"
    assert tags == sorted(tags, key=allowed.index), f"<{tag}> children out of order: {tags}"
    for single in SINGLE & set(tags):
        assert tags.count(single) == 1, f"<{tag}> has {tags.count(single)} <{single}>"
    for child in element:
        check_junit_schema(child, child.tag)


def check_counts(root: ET.Element) -> None:
    for element in [root, *root.findall("testsuite")]:
        cases = element.findall(".//testcase")
        assert int(element.get("tests")) == len(cases)
        assert int(element.get("failures")) == len(element.findall(".//testcase/failure"))
        assert int(element.get("skipped")) == len(element.findall(".//testcase/skipped"))
        assert int(element.get("errors")) == len(element.findall(".//testcase/error"))
