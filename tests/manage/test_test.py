"""`manage.sh test`: which Debian packages it installs, when, and what `--no-install` reports instead.

Nothing is installed or tested here: dpkg, apt-get and the venv's tools are stand-ins that record their
calls (tests/manage/conftest.py, `checkout`).
"""

import re

TEST_PACKAGES_LINE = re.compile(r"^==>   (\S+) +(.+)$", re.MULTILINE)
NO_REASON = "manage.sh does not say"


def asked_about(checkout):
    """The packages manage.sh asked dpkg about: its TEST_PACKAGES."""
    return [call.removeprefix("-s ") for call in checkout.recorded("dpkg")]


def pytest_runs(checkout):
    return [call for call in checkout.recorded("python") if call.startswith("-m pytest ")]


def test_test__as_root_installs_only_the_missing_packages(checkout):
    """As root, apt-get installs exactly the packages dpkg does not know, then the tests run."""
    checkout.installed.write_text("podman\nrunc\n")
    result = checkout.manage("test")
    assert result.returncode == 0, result.stderr
    missing = [name for name in asked_about(checkout) if name not in ("podman", "runc")]
    assert "wrk" in missing
    update, install = checkout.recorded("apt-get")
    assert update == "update -qq"
    assert install.split()[-len(missing) :] == missing
    assert "podman" not in install.split()
    assert len(pytest_runs(checkout)) == 3


def test_test__nothing_missing_installs_nothing(checkout):
    """With every package installed, apt-get is never called and nothing is reported missing."""
    checkout.manage("test")
    checkout.installed.write_text("\n".join(asked_about(checkout)) + "\n")
    checkout.calls.write_text("")
    result = checkout.manage("test")
    assert result.returncode == 0, result.stderr
    assert checkout.recorded("apt-get") == []
    assert "missing" not in result.stderr


def test_test__no_install_reports_each_missing_package_and_what_needs_it(checkout):
    """--no-install calls no apt-get, names each missing package with its use, then runs the tests."""
    checkout.installed.write_text("containerd\n")
    result = checkout.manage("test", "--no-install", "-k", "probe", CI="true")
    assert result.returncode == 0, result.stderr
    assert checkout.recorded("apt-get") == []
    reported = dict(TEST_PACKAGES_LINE.findall(result.stderr))
    assert list(reported) == [name for name in asked_about(checkout) if name != "containerd"]
    assert [name for name, use in reported.items() if NO_REASON in use] == []
    assert "the benchmark" in reported["wrk"]
    assert "(--no-install)" in result.stderr
    assert f"apt-get install --no-install-recommends {' '.join(reported)}" in result.stderr
    runs = pytest_runs(checkout)
    assert len(runs) == 3
    assert all(run.endswith("-k probe CI=true") and "--no-install" not in run for run in runs), runs
    assert "total: 3 passed, 0 failed, 0 skipped" in result.stdout


def test_test__not_root_reports_instead_of_installing(checkout):
    """Run by a user who is not root, test installs nothing and lists what is missing."""
    result = checkout.manage("test", as_nobody=True)
    assert result.returncode == 0, result.stderr
    assert checkout.recorded("apt-get") == []
    reported = dict(TEST_PACKAGES_LINE.findall(result.stderr))
    assert list(reported) == asked_about(checkout)
    assert "(not root)" in result.stderr
    assert len(pytest_runs(checkout)) == 3
