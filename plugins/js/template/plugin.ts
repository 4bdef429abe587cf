/**
 * The smallest useful Wicket plugin, in TypeScript: refuse objects without
 * an `owner` label. Copy this folder to start a plugin; build it with
 * scripts/build-js-plugin.
 */

import { Review, Verdict, definePlugin } from "wicket";

export const plugin = definePlugin({
  review(review: Review): Verdict {
    if (!review.object) return Verdict.allow(); // a delete: nothing to label
    // Reads only the labels: the rest of the object stays in Wicket.
    if ("owner" in review.object.labels) return Verdict.allow();
    return Verdict.deny("pods need an 'owner' label; add metadata.labels.owner");
  },
});
