/** `-m comment`: a note on a rule, up to 255 bytes; it never affects matching. */
import type { MatchExtension } from './types';
import { ExtensionError } from './types';
import { saveString } from './util';

export interface CommentInfo {
  comment: string;
}

export const comment: MatchExtension<CommentInfo> = {
  kind: 'match',
  name: 'comment',
  options: [{ name: 'comment', args: 1 }],
  parse(opts) {
    const o = opts[opts.length - 1];
    if (!o) throw new ExtensionError('comment: option "--comment" must be specified');
    // no UTF-16 unit takes more than 3 bytes in UTF-8, so only a longer text needs encoding
    if (o.args[0].length > 85 && new TextEncoder().encode(o.args[0]).length > 255)
      throw new ExtensionError(`comment: "--comment" value is longer than 255 characters`, o.token);
    return { comment: o.args[0] };
  },
  save: (i) => ' --comment' + saveString(i.comment),
  list: (i) => ` /* ${i.comment} */`,
  match: () => true,
};
