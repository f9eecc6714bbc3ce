#!/usr/bin/env python3
"""Build the quickstart demo catalog from the test photos.

Reads the photos that scripts/fetch-assets.sh puts in ``tests/data/photos/`` and writes

* ``<out>/images/demo-0001.jpg`` ... one JPEG per photo (RGB; transparency flattened onto
  white), and
* ``<out>/catalog.jsonl`` with one product per line::

    {"product_id":"demo-0001","title":"...","description":"...","category":"...",
     "price":12.5,"currency":"KGS","image_key":"demo-0001.jpg"}

Titles, descriptions, categories and prices for the known photos come from the table
below; any other photo gets a title from its file name and the category ``misc``.
Product ids follow the sorted photo names, so the output is the same on every run.

Run it with the assets venv (it needs Pillow)::

    .cache/venv-assets/bin/python scripts/make-demo-catalog.py [--out data/demo]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

try:
    from PIL import Image
except ImportError:  # pragma: no cover - depends on the interpreter used
    sys.exit("Pillow is missing: run this with .cache/venv-assets/bin/python "
             "(scripts/fetch-assets.sh creates it)")

ROOT = Path(__file__).resolve().parent.parent
PHOTO_EXTS = {".jpg", ".jpeg", ".png"}
JPEG_QUALITY = 90

# photo stem -> (title, category, description, price in KGS)
PRODUCTS: dict[str, tuple[str, str, str, float]] = {
    "astronaut": ("Astronaut in orange flight suit", "people",
                  "Portrait of an astronaut in an orange launch suit with a helmet and the US flag.", 1450.0),
    "chelsea": ("Chelsea the tabby cat", "animals",
                "Close-up of a tabby cat with green eyes.", 890.0),
    "coffee": ("Espresso cup with red saucer", "food",
               "A cup of espresso with a spoon on a red saucer, on a wooden table.", 180.0),
    "hubble_deep_field": ("Hubble Deep Field print", "space",
                          "Thousands of distant galaxies photographed by the Hubble Space Telescope.", 2100.0),
    "motorcycle": ("Red classic motorcycle", "vehicles",
                   "A red road motorcycle parked in a workshop.", 185000.0),
    "rocket": ("Rocket on the launch pad", "space",
               "A rocket standing on its launch pad at dusk, lit by floodlights.", 2400.0),
    "aerial_city": ("Aerial view of a city", "places",
                    "A city and its river seen from an aeroplane.", 1200.0),
    "aloe": ("Aloe vera in a clay pot", "plants",
             "A potted aloe vera plant in front of a patterned background.", 650.0),
    "apple": ("Red apple", "food",
              "A single large red apple.", 35.0),
    "baboon": ("Mandrill portrait", "animals",
               "A mandrill with a bright red and blue face.", 990.0),
    "books": ("Programming book set", "books",
              "Two computer books standing on a table.", 1300.0),
    "building": ("Modern hotel building", "places",
                 "A white multi-storey hotel with trees in front.", 1100.0),
    "butterfly": ("Swallowtail butterfly", "animals",
                  "A black and white swallowtail butterfly on a green leaf.", 750.0),
    "circuit_board": ("Green circuit board", "electronics",
                      "A printed circuit board with chips, capacitors and connectors.", 2900.0),
    "dog": ("Small fluffy dog", "animals",
            "A small long-haired dog with its tongue out.", 890.0),
    "football": ("Footballer striking the ball", "sports",
                 "A football player in a striped kit kicking the ball on a stadium pitch.", 1600.0),
    "fruits": ("Citrus and kiwi fruit mix", "food",
               "Sliced orange, lemon, lime and kiwi fruit.", 220.0),
    "graffiti": ("Graffiti wall art", "art",
                 "A colourful graffiti mural on a wall.", 3500.0),
    "home": ("Palace with clock tower", "places",
             "A yellow palace with a tower and a clock under a blue sky.", 1150.0),
    "notebook": ("Black notebook with elastic band", "stationery",
                 "A black hardcover notebook closed with a green elastic band.", 420.0),
    "orange": ("Orange", "food",
               "A single ripe orange.", 30.0),
    "squirrel": ("Red squirrel on a branch", "animals",
                 "A red squirrel sitting on a tree branch among green leaves.", 820.0),
    "street": ("Old brick street", "places",
               "Brick houses along a cobbled street in an old Flemish town.", 1050.0),
    "toys": ("Wooden toys and crate", "toys",
             "Colourful wooden toys, a whale and a crate in front of a lattice.", 560.0),
}


def describe(stem: str) -> tuple[str, str, str, float]:
    """Product fields for a photo, from the table or derived from its name."""
    if stem in PRODUCTS:
        return PRODUCTS[stem]
    title = stem.replace("_", " ").replace("-", " ").strip().capitalize() or "Untitled"
    return title, "misc", f"Photo of {title.lower()}.", 100.0


def to_rgb(im: Image.Image) -> Image.Image:
    """RGB copy of an image; any transparency is composited onto white."""
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build the demo catalog from the test photos.")
    parser.add_argument("--photos", default=str(ROOT / "tests/data/photos"),
                        help="folder of photos (default: tests/data/photos)")
    parser.add_argument("--out", default=str(ROOT / "data/demo"),
                        help="output folder (default: data/demo)")
    parser.add_argument("--currency", default="KGS", help="currency code (default: KGS)")
    args = parser.parse_args(argv)

    photos_dir = Path(args.photos)
    photos = sorted(p for p in photos_dir.glob("*")
                    if p.is_file() and p.suffix.lower() in PHOTO_EXTS)
    if not photos:
        sys.exit(f"no photos in {photos_dir}: run scripts/fetch-assets.sh first")

    out = Path(args.out)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)

    lines = []
    written = set()
    for i, photo in enumerate(photos, start=1):
        product_id = f"demo-{i:04d}"
        image_key = f"{product_id}.jpg"
        title, category, description, price = describe(photo.stem)
        with Image.open(photo) as im:
            rgb = to_rgb(im)
        tmp = images / (image_key + ".tmp")
        rgb.save(tmp, format="JPEG", quality=JPEG_QUALITY)
        os.replace(tmp, images / image_key)
        written.add(image_key)
        lines.append(json.dumps({
            "product_id": product_id,
            "title": title,
            "description": description,
            "category": category,
            "price": price,
            "currency": args.currency,
            "image_key": image_key,
        }, ensure_ascii=False, separators=(",", ":")))

    # Drop images left over from an earlier run with more photos.
    for stale in images.glob("demo-*.jpg"):
        if stale.name not in written:
            stale.unlink()

    catalog = out / "catalog.jsonl"
    tmp = catalog.with_name(catalog.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, catalog)
    print(f"demo catalog: {len(lines)} products in {catalog}, images in {images}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
