"""The admin in headless Chromium at 1366x768 against a real server with the demo data:
read every flag's state from the list, toggle one in two clicks, kill and restore from the
flag page, test a trigger without killing; screenshots of each page under var/artifacts/admin/."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from audit.models import AuditEvent
from flags.models import Environment, Flag, FlagState
from tests.admin.conftest import PASSWORD, WIDTH, AdminServer, screenshot

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait(driver: Any, condition: Callable[[Any], Any], seconds: float = 10) -> Any:
    return WebDriverWait(driver, seconds).until(condition)


def log_in(driver: Any, server: AdminServer) -> None:
    driver.get(server.url + "/admin/login/?next=/admin/flags/flag/")
    driver.find_element(By.NAME, "username").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(driver, expected_conditions.presence_of_element_located((By.ID, "result_list")))


def fits_the_width(driver: Any) -> None:
    """No horizontal scrolling at 1366 px: the page is no wider than the window."""
    scroll, client = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert client <= WIDTH and scroll <= client, f"page is {scroll}px wide in a {client}px window"
    # and nothing is hidden behind a scrolling box or another element: each column header's
    # corners are on screen, and the header is what is shown there
    hidden = driver.execute_script(
        """
        const out = [];
        for (const th of document.querySelectorAll('#content table thead th')) {
          const r = th.getBoundingClientRect();
          if (r.width === 0) continue;
          for (const x of [r.left + 2, r.right - 2]) {
            const y = r.top + r.height / 2;
            const at = document.elementFromPoint(x, y);
            if (x > window.innerWidth || !at || !(th === at || th.contains(at))) {
              out.push(th.textContent.trim());
              break;
            }
          }
        }
        return out;
        """
    )
    assert hidden == [], f"columns not fully visible at {WIDTH}px: {hidden}"
    scrolling = driver.execute_script(
        "return [...document.querySelectorAll('#content .results')]"
        ".filter(e => e.scrollWidth > e.clientWidth + 1).length"
    )
    assert scrolling == 0, "the list scrolls sideways"


def expected_badge(flag: Flag, state: FlagState) -> str:
    """What the list must say, worked out independently from the stored state."""
    if state.killed:
        return "KILLED"
    if not state.enabled:
        return "OFF"
    serve = state.default_serve
    if "split" in serve:
        total = sum(part["weight"] for part in serve["split"])
        shares = [f"{round(p['weight'] * 100 / total, 2):g}" for p in serve["split"]]
        if flag.type == "boolean":
            on = next(
                s for p, s in zip(serve["split"], shares, strict=True) if p["variant"] == "on"
            )
            return f"{on}%"
        return "SPLIT " + "/".join(shares)
    return "ON" if flag.type == "boolean" else f"ON: {serve['variant']}"


def row_of(driver: Any, flag_key: str) -> WebElement:
    return driver.find_element(
        By.XPATH,
        f"//table[@id='result_list']//tr[.//strong[@class='flag-key' and text()='{flag_key}']]",
    )


def badge_in(driver: Any, flag_key: str, environment: str) -> WebElement:
    return row_of(driver, flag_key).find_element(
        By.CSS_SELECTOR, f"td.field-env_{environment} .state-badge"
    )


def test_list__every_seeded_state_readable_and_a_two_click_toggle_in_staging(
    admin_server: AdminServer, browser: Any
) -> None:
    log_in(browser, admin_server)
    fits_the_width(browser)
    screenshot(browser, "01-flag-list")
    # Every seeded flag's state in every environment, as text (colour only repeats it)
    environments = list(Environment.objects.order_by("sort_order", "id"))
    read = 0
    for flag in Flag.objects.filter(archived_at__isnull=True).order_by("key"):
        for environment in environments:
            state = FlagState.objects.get(flag=flag, environment=environment)
            badge = badge_in(browser, flag.key, environment.key)
            want = expected_badge(flag, state)
            assert badge.get_attribute("data-state") == want, (flag.key, environment.key)
            assert badge.text.endswith(want), (flag.key, environment.key, badge.text)
            read += 1
    assert read == Flag.objects.filter(archived_at__isnull=True).count() * len(environments)
    # Two clicks: "Turn off…" in the staging column, then "Turn off" (after typing the reason)
    cell = row_of(browser, "recommendations.enabled").find_element(
        By.CSS_SELECTOR, "td.field-env_staging"
    )
    cell.find_element(By.CSS_SELECTOR, "button.state-toggle").click()  # click 1
    dialog = wait(
        browser, expected_conditions.visibility_of_element_located((By.ID, "state-toggle"))
    )
    assert "recommendations.enabled" in dialog.text and "Staging" in dialog.text
    browser.find_element(By.ID, "state-toggle-reason").send_keys("staging load test tonight")
    screenshot(browser, "02-flag-list-toggle-dialog")
    dialog.find_element(By.CSS_SELECTOR, "input[type=submit]").click()  # click 2
    wait(browser, lambda d: badge_in(d, "recommendations.enabled", "staging").text.endswith("OFF"))
    state = FlagState.objects.get(flag__key="recommendations.enabled", environment__key="staging")
    assert state.enabled is False
    event = AuditEvent.objects.filter(action="flag_state.update", flag_key=state.flag.key).latest(
        "sequence"
    )
    assert (event.actor, event.environment_key, event.reason) == (
        "admin",
        "staging",
        "staging load test tonight",
    )
    # production untouched
    assert FlagState.objects.get(flag=state.flag, environment__key="production").enabled
    message = browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text.lower()
    assert "disable: 1 flag(s) changed in staging" in message


def test_flag_page__kill_and_restore_then_active_kills_audit_and_overview(
    admin_server: AdminServer, browser: Any
) -> None:
    log_in(browser, admin_server)
    flag = Flag.objects.get(key="new-checkout")
    browser.get(f"{admin_server.url}/admin/flags/flag/{flag.pk}/change/")
    sections = browser.find_elements(By.CSS_SELECTOR, ".env-section .env-name")
    assert [s.text for s in sections] == ["Development", "Staging", "Production"]
    production = browser.find_element(By.CSS_SELECTOR, ".env-section[data-environment=production]")
    head = production.find_element(By.CSS_SELECTOR, ".env-section-head")
    assert "25%" in head.text and "next 30%" in head.text  # the seeded ramp-up's next step
    fits_the_width(browser)
    screenshot(browser, "03-flag-page")
    screenshot(browser, "03b-flag-page-whole", full_height=True)
    head.find_element(By.LINK_TEXT, "Kill in production").click()
    browser.find_element(By.NAME, "reason").send_keys("checkout errors after deploy 4512")
    browser.find_element(By.NAME, "confirm").click()
    browser.find_element(By.CSS_SELECTOR, "input[type=submit][value=Kill]").click()
    wait(browser, lambda d: "Restore in production" in d.page_source)
    state = FlagState.objects.get(flag=flag, environment__key="production")
    assert state.killed and state.killed_by == "admin"
    head = browser.find_element(
        By.CSS_SELECTOR, ".env-section[data-environment=production] .env-section-head"
    )
    assert "KILLED" in head.text and " UTC · " in head.text
    # Active kills: who, when (UTC and how long ago), why, restore
    browser.get(admin_server.url + "/admin/flags/flag/active-kills/")
    table = browser.find_element(By.ID, "active-kills")
    assert "new-checkout" in table.text and "checkout errors after deploy 4512" in table.text
    assert "UTC · just now" in table.text
    fits_the_width(browser)
    screenshot(browser, "04-active-kills")
    # The list: the kill in one line, the full text on hover
    browser.get(admin_server.url + "/admin/flags/flag/")
    detail = row_of(browser, "new-checkout").find_element(
        By.CSS_SELECTOR, "td.field-env_production .kill-detail"
    )
    assert detail.size["height"] < 20  # one line
    title = detail.get_attribute("title") or ""
    assert "checkout errors after deploy 4512" in title and "by admin" in title
    assert "ACTIVE KILLS (1)" in browser.find_element(By.CSS_SELECTOR, ".object-tools").text
    fits_the_width(browser)
    screenshot(browser, "04b-flag-list-with-a-kill")
    # The overview at a glance, with the kill on it
    browser.get(admin_server.url + "/admin/flags/flag/overview/")
    assert "new-checkout" in browser.find_element(By.ID, "overview-kills").text
    assert "new-checkout" in browser.find_element(By.ID, "overview-rollouts").text
    assert "flag.kill" in browser.find_element(By.ID, "overview-changes").text
    fits_the_width(browser)
    screenshot(browser, "05-overview", full_height=True)
    # Restore from the flag page
    browser.get(f"{admin_server.url}/admin/flags/flag/{flag.pk}/change/")
    browser.find_element(By.LINK_TEXT, "Restore in production").click()
    browser.find_element(By.NAME, "reason").send_keys("fixed in 4513")
    browser.find_element(By.NAME, "confirm").click()
    browser.find_element(By.CSS_SELECTOR, "input[type=submit][value=Restore]").click()
    wait(browser, lambda d: "Kill in production" in d.page_source)
    assert not FlagState.objects.get(flag=flag, environment__key="production").killed
    # The audit list: who, when, what, environment and reason visible at 1366 px
    browser.find_element(By.PARTIAL_LINK_TEXT, "AUDIT TRAIL OF NEW-CHECKOUT").click()
    rows = browser.find_element(By.ID, "result_list").text
    assert "fixed in 4513" in rows and "checkout errors after deploy 4512" in rows
    assert "production" in rows and "admin" in rows and "UTC" in rows
    fits_the_width(browser)
    screenshot(browser, "06-audit-list")


def test_trigger__tested_without_killing(admin_server: AdminServer, browser: Any) -> None:
    log_in(browser, admin_server)
    flag = Flag.objects.get(key="payments.provider-b")
    production = Environment.objects.get(key="production")
    browser.get(admin_server.url + "/admin/flags/killtrigger/add/")
    browser.find_element(By.NAME, "name").send_keys("datadog-psp-errors")
    browser.find_element(By.CSS_SELECTOR, f"select[name=flag] option[value='{flag.pk}']").click()
    browser.find_element(
        By.CSS_SELECTOR, f"select[name=environment] option[value='{production.pk}']"
    ).click()
    browser.find_element(By.NAME, "reason").send_keys("PSP B error rate above 5%")
    browser.find_element(By.CSS_SELECTOR, "input[name=_save]").click()
    wait(browser, expected_conditions.presence_of_element_located((By.ID, "trigger-test")))
    live = browser.find_element(By.ID, "trigger-live-curl")
    assert "Warning" not in live.text  # folded away until asked for
    browser.find_element(By.ID, "trigger-test").click()
    result = wait(
        browser,
        lambda d: (
            (e := d.find_element(By.ID, "trigger-test-result")).text.startswith(("✔", "✖")) and e
        ),
    )
    assert result.text.startswith("✔") and "Nothing was changed" in result.text, result.text
    live.find_element(By.TAG_NAME, "summary").click()
    assert "really kills" in live.text
    screenshot(browser, "07-trigger-created")
    time.sleep(0.2)
    assert not FlagState.objects.get(flag=flag, environment=production).killed
    assert AuditEvent.objects.filter(
        action="trigger.test", actor="trigger:datadog-psp-errors"
    ).exists()
    assert not AuditEvent.objects.filter(action="flag.kill", flag_key=flag.key).exists()


def _section(driver: Any, environment: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f".env-section[data-environment={environment}]")


def _editor(section: WebElement, field: str) -> WebElement:
    return section.find_element(By.CSS_SELECTOR, f".structured-editor[data-editor-for$='-{field}']")


def _choose(element: WebElement, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(element).select_by_value(value)


def _type(element: WebElement, text: str) -> None:
    element.clear()
    element.send_keys(text)


DEFINITION = {
    "targets": [{"variant": "off", "values": ["qa-carol", "qa-dan"]}],
    "rules": [
        {
            "id": "dach-staff",
            "conditions": [
                {"attribute": "country", "operator": "in", "value": ["DE", "AT"]},
                {"operator": "in_segment", "value": ["internal-staff"]},
            ],
            "serve": {"variant": "on"},
        }
    ],
    "default_serve": {
        "split": [{"variant": "on", "weight": 1000}, {"variant": "off", "weight": 9000}]
    },
}


def test_structured_editor__a_rule_and_a_10_90_split_saved_as_the_api_would(
    admin_server: AdminServer, browser: Any
) -> None:
    from flags import services
    from flags.models import ApiToken

    log_in(browser, admin_server)
    flag = Flag.objects.get(key="payments.provider-b")
    # A split stored with relative weights elsewhere: saving the page must not rewrite it
    relative = {"split": [{"variant": "on", "weight": 1}, {"variant": "off", "weight": 3}]}
    services.flag_state_update(
        actor=_cli(),
        flag=flag,
        environment=Environment.objects.get(key="production"),
        default_serve=relative,
    )
    untouched = FlagState.objects.get(flag=flag, environment__key="production")
    browser.get(f"{admin_server.url}/admin/flags/flag/{flag.pk}/change/")
    production_serve = _editor(_section(browser, "production"), "default_serve")
    shown = [
        e.get_attribute("value")
        for e in production_serve.find_elements(By.CSS_SELECTOR, ".split-percent")
    ]
    assert shown == ["25", "75"]
    staging = _section(browser, "staging")
    # The JSON boxes are hidden behind the form; "JSON" shows them
    assert not staging.find_element(By.NAME, "states-1-rules").is_displayed()
    targets = _editor(staging, "targets")
    targets.find_element(By.CSS_SELECTOR, ".add-target").click()
    _choose(targets.find_element(By.CSS_SELECTOR, ".target-variant"), "off")
    _type(targets.find_element(By.CSS_SELECTOR, ".target-values"), "qa-carol, qa-dan")
    rules = _editor(staging, "rules")
    rules.find_element(By.CSS_SELECTOR, ".add-rule").click()
    _type(rules.find_element(By.CSS_SELECTOR, ".rule-id"), "dach-staff")
    _type(rules.find_element(By.CSS_SELECTOR, ".condition-attribute"), "country")
    operators = rules.find_element(By.CSS_SELECTOR, ".condition-operator")
    offered = [o.get_attribute("value") for o in operators.find_elements(By.TAG_NAME, "option")]
    assert "semver_gte" in offered and "in_segment" in offered  # the engine's list
    _choose(operators, "in")
    _type(rules.find_element(By.CSS_SELECTOR, ".condition-value"), "DE, AT")
    rules.find_element(By.CSS_SELECTOR, ".add-condition").click()
    _choose(rules.find_elements(By.CSS_SELECTOR, ".condition-operator")[1], "in_segment")
    segment = rules.find_element(By.CSS_SELECTOR, ".condition-segment")
    assert segment.get_attribute("value") == "internal-staff"  # the segment picker
    # The default serve: a 10/90 split with its live sum
    serve = _editor(staging, "default_serve")
    serve.find_element(By.CSS_SELECTOR, "input.serve-mode[value=split]").click()
    _type(serve.find_element(By.CSS_SELECTOR, ".split-percent"), "10")
    assert "must be 100" in serve.find_element(By.CSS_SELECTOR, ".sum").text
    serve.find_element(By.CSS_SELECTOR, ".add-share").click()
    _choose(serve.find_elements(By.CSS_SELECTOR, ".split-variant")[1], "off")
    _type(serve.find_elements(By.CSS_SELECTOR, ".split-percent")[1], "90")
    assert serve.find_element(By.CSS_SELECTOR, ".sum").text == "Sum: 100 %"
    browser.find_element(By.ID, "id_reason").send_keys("DACH staff first, then 10 %")
    browser.execute_script("arguments[0].scrollIntoView()", rules)
    screenshot(browser, "08-structured-editor")
    browser.find_element(By.CSS_SELECTOR, "input[name=_continue]").click()
    wait(browser, lambda d: "was changed successfully" in d.page_source)
    saved = FlagState.objects.get(flag=flag, environment__key="staging")
    assert saved.targets == DEFINITION["targets"]
    assert saved.rules == DEFINITION["rules"]
    assert saved.default_serve == DEFINITION["default_serve"]
    production = FlagState.objects.get(flag=flag, environment__key="production")
    assert production.default_serve == relative and production.version == untouched.version
    # The same definition through the API, in development: the API stores exactly the same
    _, token = services.token_issue(
        actor=_cli(),
        kind=ApiToken.Kind.ADMIN,
        name="browser-test",
    )
    with admin_server.edge.client(token) as api:
        patched = api.patch(
            f"/api/v1/flags/{flag.key}/environments/development/",
            json={**DEFINITION, "reason": "the same through the API"},
        )
        assert patched.status_code == 200, patched.text
        by_api = api.get(f"/api/v1/flags/{flag.key}/environments/development/").json()
        by_editor = api.get(f"/api/v1/flags/{flag.key}/environments/staging/").json()
    for field in ("targets", "rules", "default_serve", "prerequisites"):
        assert by_editor[field] == by_api[field], field
    # A problem the validator finds is shown beside the control it names
    browser.get(f"{admin_server.url}/admin/flags/flag/{flag.pk}/change/")
    staging = _section(browser, "staging")
    rules = _editor(staging, "rules")
    _choose(rules.find_element(By.CSS_SELECTOR, ".condition-operator"), "gt")
    _type(rules.find_element(By.CSS_SELECTOR, ".condition-value"), "lots")
    browser.find_element(By.CSS_SELECTOR, "input[name=_continue]").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".field-problem"))
    value = _editor(_section(browser, "staging"), "rules").find_element(
        By.CSS_SELECTOR, "[data-path='rules[0].conditions[0].value']"
    )
    assert value.get_attribute("value") == "lots"  # kept as typed
    problem = value.find_element(By.XPATH, "following-sibling::span[1]")
    assert "compares numbers" in problem.text
    assert FlagState.objects.get(flag=flag, environment__key="staging").rules == DEFINITION["rules"]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", value)
    screenshot(browser, "09-editor-problem-beside-the-field")


def _cli() -> Any:
    from audit.recorder import Actor

    return Actor.cli("browser-test")
