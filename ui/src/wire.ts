// Wire types of Cairn's JSON API (/api/v1 and the desktop command). Every one is generated from
// the Rust types into wire.gen.ts (`cargo wire` rewrites it; a Rust test fails when it is stale):
// this module re-exports them under the names the UI uses. Non-finite numbers arrive as the
// strings "NaN", "Infinity", "-Infinity" (`Num`).

export type * from "./wire.gen";
import type { BucketView } from "./wire.gen";

/** A downsampled bucket of a metric (`BucketView` in Rust). */
export type Bucket = BucketView;
