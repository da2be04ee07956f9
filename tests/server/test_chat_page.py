#!/usr/bin/env python3
"""test_chat_page.py BINARY [SCREENSHOT_DIR] - the chat page at / in headless
Chromium (Debian's chromium and chromium-driver, Selenium from PyPI:
scripts/test.sh installs them), served by a CPU backend on a tiny synth
model.

- The page loads (with the model's name) and a message sent with Enter
  streams an answer into the conversation, with its token count and
  tokens/s; markdown in an answer renders as HTML, its text escaped.
- Stop mid-stream ends the answer, marked "stopped", and the next message
  still works.
- With --api-key the page is served without the key, asks for it on the
  first send, and works once it is entered.
With SCREENSHOT_DIR the page is saved there as PNGs (docs/chat-page-*.png).
Prints "N passed, M failed"; exits non-zero on any failure (a missing
browser is a failure, never a skip).
"""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pycheck import check, report  # noqa: E402
import serveproc  # noqa: E402

BIN = sys.argv[1]
SHOTS = sys.argv[2] if len(sys.argv) > 2 else None


def serve(model, *extra):
    return serveproc.start(BIN, model, *extra)


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1100,760"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def wait_for(fn, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return None


def test_chat(drv, port):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    drv.get(f"http://127.0.0.1:{port}/")
    check(drv.title == "m40-llm chat", "page title: %r" % drv.title)
    check(wait_for(lambda: drv.find_element(By.ID, "model").text) == "tiny.gguf",
          "the model's name is shown")
    # short answers: a few tokens, sampled with a fixed temperature
    drv.find_element(By.ID, "toggle-settings").click()
    mt = drv.find_element(By.ID, "max_tokens")
    mt.clear()
    mt.send_keys("12")
    drv.find_element(By.ID, "toggle-settings").click()
    box = drv.find_element(By.ID, "input")
    box.send_keys("Hello <b>there</b>", Keys.ENTER)
    note = wait_for(lambda: [n.text for n in drv.find_elements(By.CSS_SELECTOR,
                                                               ".msg.assistant .note")])
    check(note and re.match(r"\d+ tokens", note[0]), "an answer with its token count: %r" % note)
    users = drv.find_elements(By.CSS_SELECTOR, ".msg.user")
    check(len(users) == 1 and users[0].text == "Hello <b>there</b>" and
          not users[0].find_elements(By.TAG_NAME, "b"), "the user's text is text, not HTML")
    answer = drv.find_elements(By.CSS_SELECTOR, ".msg.assistant")[0].text
    check(len(answer) > len(note[0]), "the answer streamed in: %r" % answer)
    if SHOTS:
        drv.save_screenshot(os.path.join(SHOTS, "chat-page-answer.png"))
    # markdown renders, escaped: the page's own renderer run on a sample
    html = drv.execute_script(
        "return markdown('# Title\\n**bold** and `x<y`\\n- one\\n- two\\n```c\\nint a<b;\\n```');")
    check("<h3>Title</h3>" in html and "<strong>bold</strong>" in html and
          "<code>x&lt;y</code>" in html and "<ul><li>one</li><li>two</li></ul>" in html and
          '<pre><code class="lang-c">int a&lt;b;</code></pre>' in html, "markdown: %r" % html)
    # a long answer, stopped mid-stream: the random model could end it by
    # itself, so this one request asks the server to ignore end tokens
    drv.execute_script(
        "const f = window.fetch; window.fetch = (u, o) => {"
        " if (o && o.body && u === '/v1/chat/completions') {"
        "  const b = JSON.parse(o.body); b.ignore_eos = true; o.body = JSON.stringify(b);"
        "  window.fetch = f; }"
        " return f(u, o); };")
    drv.find_element(By.ID, "toggle-settings").click()
    mt.clear()
    mt.send_keys("3000")
    drv.find_element(By.ID, "toggle-settings").click()
    box.send_keys("Tell me everything", Keys.ENTER)
    stop = drv.find_element(By.ID, "stop")
    check(wait_for(lambda: stop.is_enabled(), 10), "Stop is enabled while streaming")
    wait_for(lambda: len(drv.find_elements(By.CSS_SELECTOR, ".msg.assistant")[-1].text) > 10, 30)
    stop.click()
    note = wait_for(lambda: [n.text for n in drv.find_elements(By.CSS_SELECTOR,
                                                               ".msg.assistant .note")][1:], 30)
    check(note and note[0].startswith("stopped"), "the stopped answer is marked: %r" % note)
    check(drv.find_element(By.ID, "send").is_enabled() and not stop.is_enabled(),
          "Send is back after Stop")
    if SHOTS:
        drv.save_screenshot(os.path.join(SHOTS, "chat-page-stopped.png"))
    drv.find_element(By.ID, "toggle-settings").click()
    mt.clear()
    mt.send_keys("5")
    drv.find_element(By.ID, "toggle-settings").click()
    box.send_keys("and after that?", Keys.ENTER)
    check(wait_for(lambda: len(drv.find_elements(By.CSS_SELECTOR, ".msg.assistant .note")) == 3),
          "a message after the stop is answered")


def test_api_key(drv, port):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    drv.get(f"http://127.0.0.1:{port}/")
    drv.find_element(By.ID, "input").send_keys("hi", Keys.ENTER)
    status = wait_for(lambda: drv.find_element(By.ID, "status").text)
    check(status and "API key" in status, "the page asks for the key: %r" % status)
    check(drv.find_element(By.ID, "settings").is_displayed(), "the settings open for the key")
    drv.find_element(By.ID, "key").send_keys("sekret")
    mt = drv.find_element(By.ID, "max_tokens")
    mt.clear()
    mt.send_keys("4")
    drv.find_element(By.ID, "input").send_keys("hi again", Keys.ENTER)
    check(wait_for(lambda: drv.find_elements(By.CSS_SELECTOR, ".msg.assistant .note")),
          "with the key the answer comes")
    if SHOTS:
        drv.save_screenshot(os.path.join(SHOTS, "chat-page-api-key.png"))


def main():
    try:
        drv = browser()
    except Exception as e:  # no browser: a failure, never a skip
        check(False, "headless Chromium did not start (scripts/install-deps.sh installs "
                     "chromium and chromium-driver, scripts/test.sh selenium): %r" % e)
        report()
    try:
        with tempfile.TemporaryDirectory() as d:
            model = os.path.join(d, "tiny.gguf")
            subprocess.run([BIN, "synth", "--shape", "tiny", "--type", "q8_0", "--seed", "3",
                            "-o", model], check=True, stdout=subprocess.DEVNULL)
            for extra, test in (((), test_chat), (("--api-key", "sekret"), test_api_key)):
                proc, port = serve(model, "-c", "4096", *extra)
                try:
                    test(drv, port)
                except Exception as e:
                    check(False, "%s raised %r" % (test.__name__, e))
                finally:
                    serveproc.stop(proc)
    finally:
        drv.quit()
    report()


if __name__ == "__main__":
    main()
