// Wire types of Cairn's JSON API (/api/v1 and the desktop commands). The DTOs are generated
// from the Rust types into wire.gen.ts (`cargo wire` rewrites it; a Rust test fails when it is
// stale): this module re-exports them under the names the UI uses and keeps the few shapes that
// are not Rust DTOs. Non-finite numbers arrive as the strings "NaN", "Infinity", "-Infinity"
// (`Num`).

export type * from "./wire.gen";
import type { BucketView, Code } from "./wire.gen";

/** A downsampled bucket of a metric (`BucketView` in Rust). */
export type Bucket = BucketView;

/**
 * The body of every error of the API and the desktop commands. Hand-kept: the server and the
 * desktop shell each declare this struct themselves; `Code` is generated.
 */
export interface ApiErrorBody {
  code: Code;
  message: string;
}
