"""A tiny project for pytester runs: a hand-set linear model whose verdicts are known in closed form.

``model`` is nn.Linear(4, 2) with logits (x0 - x1, x1 - x0), so a sample with d = x0 - x1 has margin
2|d|; an linf perturbation of radius eps moves d by up to 2 eps, so it flips the label iff |d| <= 2 eps
(the domain [0, 1] leaves room here).
``data`` has d = 0.8, 0.1, -0.6, -0.04: at eps=0.1 samples 1 and 3 are falsified and 0 and 2 survive
(unknown under attacks only); at eps=0.01 every sample survives.
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET

import pytest

PROJECT_CONFTEST = '''
import pytest
import torch

torch.set_num_threads(1)  # xdist workers and a loaded 2-core machine: one thread each

def linear():
    m = torch.nn.Linear(4, 2)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[1.0, -1.0, 0.0, 0.0], [-1.0, 1.0, 0.0, 0.0]]))
        m.bias.zero_()
    return torch.nn.Sequential(m).eval()

@pytest.fixture
def model():
    return linear()

@pytest.fixture
def net():
    return linear()

@pytest.fixture
def data():
    x = torch.tensor([[0.9, 0.1, 0.5, 0.5], [0.55, 0.45, 0.5, 0.5],
                      [0.2, 0.8, 0.5, 0.5], [0.48, 0.52, 0.5, 0.5]])
    return x, torch.tensor([0, 0, 1, 1])
'''

class Project:
    """pytester plus the helpers the plugin tests share."""

    def __init__(self, pytester):
        self.pytester = pytester
        self.path = pytester.path

    def test_file(self, text, name="test_it"):
        return self.pytester.makepyfile(**{name: textwrap.dedent(text)})

    def run(self, *args, subprocess=False):
        runner = self.pytester.runpytest_subprocess if subprocess else self.pytester.runpytest
        return runner("-p", "no:cacheprovider", *args)

    @staticmethod
    def cases(path):
        """{testcase name: (outcome, message)} of a JUnit file; outcome is passed/failure/skipped."""
        out = {}
        for tc in ET.parse(path).getroot().iter("testcase"):
            tag = next((c for c in tc if c.tag in ("failure", "skipped", "error")), None)
            out[tc.get("name")] = ("passed", None) if tag is None else (tag.tag, tag.get("message"))
        return out

    @staticmethod
    def suite_properties(path):
        """{suite name: {property: value}} of a JUnit file."""
        root = ET.parse(path).getroot()
        return {s.get("name"): {p.get("name"): p.get("value") for p in s.find("properties")}
                for s in root.iter("testsuite")}


@pytest.fixture
def project(pytester):
    """A pytester project with the tiny model's conftest (fixtures ``model``, ``net``, ``data``)."""
    pytester.makeconftest(PROJECT_CONFTEST)
    return Project(pytester)
