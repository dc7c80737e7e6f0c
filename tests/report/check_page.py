#!/usr/bin/python3
"""Opens a genq report in headless Chromium (Debian's chromium and chromedriver, through
Selenium) the way a person opens the file: from file://, no server. Fails when the page logs
an error to the console, when an image does not resolve (complete, naturalWidth > 0), when it
has fewer images or plots than expected, runs a script, or loads anything but data:, file:
and the allowed URL prefixes. Writes screenshots of the top and of the whole page.

    check_page.py PAGE.html --shots DIR [--min-images N] [--min-plots N] [--allow PREFIX]...
"""
import argparse
import json
import os
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("--shots", required=True)
    ap.add_argument("--min-images", type=int, default=1)
    ap.add_argument("--min-plots", type=int, default=3)
    ap.add_argument("--allow", action="append", default=[])
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    a = ap.parse_args()
    profile = tempfile.mkdtemp(prefix="genq-chromium.")
    opts = webdriver.ChromeOptions()
    opts.binary_location = a.chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
                 "--window-size=1280,900", "--force-device-scale-factor=1"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(a.chromedriver), options=opts)
    problems = []
    try:
        drv.set_page_load_timeout(60)
        drv.get("file://" + os.path.abspath(a.page))
        # Wait (bounded) until every image has finished, loaded or not.
        drv.set_script_timeout(30)
        drv.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const imgs = Array.from(document.images);
            Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })))
                   .then(() => done());""")
        info = drv.execute_script("""
            return {
              images: Array.from(document.images).map(i => ({src: i.src.slice(0, 80), ok: i.complete && i.naturalWidth > 0,
                                                             w: i.naturalWidth})),
              plots: document.querySelectorAll('svg.plot').length,
              scripts: document.scripts.length,
              resources: performance.getEntriesByType('resource').map(e => e.name),
              height: document.documentElement.scrollHeight,
              title: document.title};""")
        for log in drv.get_log("browser"):
            if log.get("level") in ("SEVERE", "ERROR"):
                problems.append(f"console: {log.get('message')}")
        bad = [i for i in info["images"] if not i["ok"]]
        for i in bad[:10]:
            problems.append(f"image did not resolve: {i['src']}")
        if len(info["images"]) < a.min_images:
            problems.append(f"{len(info['images'])} images, expected at least {a.min_images}")
        if info["plots"] < a.min_plots:
            problems.append(f"{info['plots']} plots, expected at least {a.min_plots}")
        if info["scripts"]:
            problems.append(f"{info['scripts']} script element(s) in the page")
        allowed = ("data:", "file:") + tuple(a.allow)
        for r in info["resources"]:
            if not r.startswith(allowed):
                problems.append(f"loaded from elsewhere: {r[:100]}")
        os.makedirs(a.shots, exist_ok=True)
        drv.save_screenshot(os.path.join(a.shots, "report-top.png"))
        drv.set_window_size(1280, min(int(info["height"]) + 40, 12000))
        drv.save_screenshot(os.path.join(a.shots, "report-full.png"))
        print(json.dumps({"title": info["title"], "images": len(info["images"]), "plots": info["plots"],
                          "resources": len(info["resources"]), "height": info["height"],
                          "problems": len(problems)}))
    finally:
        drv.quit()
    for p in problems:
        print("FAIL", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
