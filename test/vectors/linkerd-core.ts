import type { VectorSet } from './types';

export const vectors: VectorSet[] = [
  {
    extension: 'multiport',
    rows: [
      { rule: '-p tcp -m multiport --dports 4190,4191,4567:4568 -j RETURN', save: '=', list: ' multiport dports 4190,4191,4567:4568', ok: true },
      { rule: '-p udp -m multiport ! --sports 53,67', save: '=', list: ' multiport sports  !53,67', ok: true },
      { rule: '-p tcp -m multiport --ports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15', save: '=', list: ' multiport ports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15', ok: true },
      { rule: '-p tcp -m multiport --ports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16', ok: false },
      { rule: '-m multiport --dports 80', ok: false },
    ],
  },
  {
    extension: 'comment',
    rows: [
      { rule: '-m comment --comment "hello world" -j ACCEPT', save: '=', list: ' /* hello world */', ok: true },
      { rule: '-m comment --comment proxy-init/ignore-loopback', save: '-m comment --comment "proxy-init/ignore-loopback"', list: ' /* proxy-init/ignore-loopback */', ok: true },
      { rule: '-m comment --comment plain_word-1', save: '=', list: ' /* plain_word-1 */', ok: true },
      { rule: '-m comment --comment "say \\"hi\\""', save: '=', list: ' /* say "hi" */', ok: true },
    ],
  },
  {
    extension: 'owner',
    rows: [
      { rule: '-m owner --uid-owner 2102 -j RETURN', save: '=', list: ' owner UID match 2102', ok: true, chain: 'OUTPUT' },
      { rule: '-m owner ! --uid-owner 0-10 --gid-owner 5 --suppl-groups', save: '=', list: ' ! owner UID match 0-10 owner GID match 5 incl. suppl. groups', ok: true, chain: 'OUTPUT' },
      { rule: '-m owner --socket-exists', save: '=', list: ' owner socket exists', ok: true, chain: 'POSTROUTING', table: 'mangle' },
      { rule: '-m owner --uid-owner 2102', ok: false, chain: 'INPUT' },
    ],
  },
  {
    extension: 'REDIRECT',
    rows: [
      { rule: '-p tcp -j REDIRECT --to-ports 4143', save: '=', list: ' redir ports 4143', ok: true, table: 'nat', chain: 'PREROUTING' },
      { rule: '-p tcp -j REDIRECT --to-ports 4000-4010 --random', save: '=', list: ' redir ports 4000-4010 random', ok: true, table: 'nat', chain: 'OUTPUT' },
      { rule: '-p tcp -j REDIRECT --to-ports 4143', ok: false, table: 'filter', chain: 'INPUT' },
    ],
  },
];
