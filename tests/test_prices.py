"""The price table holds several dated quotes per device; plan uses the cheapest on-demand
one and names its cloud; user files in the old one-row-per-device format still load."""

from __future__ import annotations

import pytest

from ddlsim.api.plan import ConfigPrediction, PlanOptions, plan
from ddlsim.api.prices import choose_price, load_prices, price_quotes
from ddlsim.errors import ConfigError

OLD_HEADER = "device,instance,usd_per_gpu_hour,pricing,source,date"
NEW_HEADER = "device,provider,instance,usd_per_gpu_hour,pricing,source,date"


def ideal(model, preset, gpus, opts):
    return ConfigPrediction("toy", 0.1, opts.batch_per_gpu * gpus, dp=gpus)


def write(path, header, lines):
    path.write_text("\n".join([header, *lines]) + "\n")
    return str(path)


def quote(price, pricing="on_demand", provider="X", date="2026-01-01", instance="i"):
    return {"device": "d", "provider": provider, "instance": instance,
            "usd_per_gpu_hour": price, "pricing": pricing, "source": "s", "date": date}


def test_rule_cheapest_on_demand_then_newest_else_cheapest_of_any_kind():
    cb, od_dear, od_cheap = quote(1.0, "capacity_block"), quote(3.0), quote(2.0, provider="Y")
    best = choose_price([cb, od_dear, od_cheap])
    assert best["usd_per_gpu_hour"] == 2.0 and best["provider"] == "Y" and best["quotes"] == 3
    assert best["choice"] == ("cheapest of 2 on-demand quotes: Y $2 (2026-01-01), "
                              "X $3 (2026-01-01); other pricing, not compared: "
                              "X $1 (2026-01-01) capacity_block")
    old, new = quote(2.0, date="2018"), quote(2.0, date="2026-08-26", provider="Z")
    assert choose_price([old, new])["date"] == "2026-08-26"  # a tie goes to the newest
    only_cb = choose_price([quote(5.0, "reserved"), quote(4.0, "capacity_block")])
    assert only_cb["usd_per_gpu_hour"] == 4.0
    assert only_cb["choice"].startswith("no on-demand quote; cheapest of 2: ")
    with pytest.raises(ConfigError, match="at least one quote"):
        choose_price([])


def test_every_packaged_quote_is_dated_sourced_and_the_choice_names_its_cloud():
    for quotes in price_quotes().values():
        for q in quotes:
            assert q["provider"] and q["date"] and q["source"] and q["pricing"], q
    prices = load_prices()
    # two clouds for the GPUs people rent most, the cheapest on-demand one chosen
    expected = {"h100-sxm": ("AWS", 6.88), "h200": ("AWS", 7.912), "a100-40gb": ("AWS", 2.7447),
                "a100-80gb": ("AWS", 3.4309), "b200": ("OCI", 14.0), "l40s": ("OCI", 3.5),
                "a10": ("Lambda", 0.86), "gb200": ("OCI", 16.0), "mi300x": ("OCI", 6.0)}
    for device, (cloud, price) in expected.items():
        row = prices[device]
        assert (row["provider"], row["usd_per_gpu_hour"]) == (cloud, price), device
        assert row["pricing"] == "on_demand" and cloud in row["instance"], device
        assert row["choice"].startswith("cheapest of "), device
    for device in ("h100-sxm", "h200", "a100-40gb", "a100-80gb", "b200", "l40s", "a10"):
        assert len({q["provider"] for q in price_quotes()[device]}) >= 2, device
    # each quote is the instance price over its GPU count, as its source says
    oci_gb200 = next(q for q in price_quotes()["gb200"] if q["provider"] == "OCI")
    assert "BM.GPU.GB200.4 $64/h / 4 GPUs" in oci_gb200["source"]
    aws_h100 = next(q for q in price_quotes()["h100-sxm"]
                    if q["provider"] == "AWS" and q["pricing"] == "on_demand")
    assert "p5.48xlarge instance $55.04/h / 8 GPUs" in aws_h100["source"]
    assert aws_h100["usd_per_gpu_hour"] == 55.04 / 8


def test_unpriced_devices_stay_unpriced():
    # no published on-demand price was found for these: no row, never an estimate
    prices = load_prices()
    for device in ("mi325x", "a100-pcie-40gb", "a100-pcie-80gb", "gaudi2", "gaudi3", "p40",
                   "p100-sxm2-16gb", "v100-sxm3-32gb"):
        assert device not in prices, device


def test_old_format_user_file_replaces_all_quotes_of_its_devices(tmp_path):
    path = write(tmp_path / "p.csv", OLD_HEADER, ["h100,x,9.5,on_demand,my quote,2026-12-01"])
    prices = load_prices(path)
    assert prices["h100-sxm"]["usd_per_gpu_hour"] == 9.5  # dearer than AWS: still replaces
    assert prices["h100-sxm"]["provider"] == "" and prices["h100-sxm"]["quotes"] == 1
    assert prices["b200"]["usd_per_gpu_hour"] == 14.0  # other devices keep their quotes
    two = write(tmp_path / "q.csv", NEW_HEADER, ["a10,A,i1,1.5,on_demand,s,2026-12-01",
                                                 "a10,B,i2,1.2,on_demand,s,2026-12-01"])
    assert load_prices(two)["a10"]["provider"] == "B"


def test_bad_quotes_are_one_line_errors(tmp_path):
    dup = write(tmp_path / "d.csv", NEW_HEADER, ["a10,A,i,1.5,on_demand,s,2026-12-01"] * 2)
    with pytest.raises(ConfigError, match=r"line 3: device: 'a10' has this quote twice"):
        load_prices(dup)
    empty = write(tmp_path / "e.csv", NEW_HEADER, ["a10,A,i,1.5,on_demand,,2026-12-01"])
    with pytest.raises(ConfigError, match=r"line 2: source: every price needs a source"):
        load_prices(empty)
    with pytest.raises(ConfigError, match=r"missing columns \['date'\].*provider is optional"):
        load_prices(write(tmp_path / "m.csv", "device,instance,usd_per_gpu_hour,pricing,"
                                              "source", ["a10,i,1,on_demand,s"]))


def test_plan_prices_gb200_and_mi300x_and_reports_the_cloud():
    r = plan(PlanOptions(model="resnet50", target="epochs=1", max_gpus=8), predictor=ideal)
    assert {"gb200", "mi300x"} <= set(r.table["gpu"])  # priced now, so planned
    assert r.prices["mi300x"]["provider"] == "OCI"
    assert not any(n.startswith(("gb200", "mi300x")) and "skipped" in n for n in r.notes)
    assert not any("prices are on-demand except" in n for n in r.notes)
    from ddlsim.reports.plan import plan_markdown

    md = plan_markdown(r)
    assert "BM.GPU.MI300X.8 (8x MI300X 192GB; OCI)" in md
    assert "cheapest of 2 on-demand quotes: AWS $6.88" in r.prices["h100-sxm"]["choice"]


def test_each_quote_is_its_instance_price_over_its_gpus():
    import re

    checked = 0
    for quotes in price_quotes().values():
        for q in quotes:
            m = re.search(r"\$([0-9.]+)/h / (\d+) GPUs", q["source"])
            if m:
                per_gpu = float(m.group(1)) / int(m.group(2))
                assert q["usd_per_gpu_hour"] == pytest.approx(per_gpu, abs=5e-5), q["source"]
                checked += 1
    assert checked >= 15
