// The catalogue, in report order: every check module, registered under its stable ID.
import type { Check } from './check.js';
import { check as fs_01 } from './checks/fs-01.js';
import { check as fs_02 } from './checks/fs-02.js';
import { check as fs_03 } from './checks/fs-03.js';
import { check as fs_04 } from './checks/fs-04.js';
import { check as fs_05 } from './checks/fs-05.js';
import { check as fs_06 } from './checks/fs-06.js';
import { check as fs_07 } from './checks/fs-07.js';
import { check as fs_08 } from './checks/fs-08.js';
import { check as fs_09 } from './checks/fs-09.js';
import { check as fs_10 } from './checks/fs-10.js';
import { check as fs_11 } from './checks/fs-11.js';
import { check as fs_12 } from './checks/fs-12.js';
import { check as dev_01 } from './checks/dev-01.js';
import { check as dev_02 } from './checks/dev-02.js';
import { check as dev_03 } from './checks/dev-03.js';
import { check as dev_04 } from './checks/dev-04.js';
import { check as prv_01 } from './checks/prv-01.js';
import { check as prv_02 } from './checks/prv-02.js';
import { check as prv_03 } from './checks/prv-03.js';
import { check as prv_04 } from './checks/prv-04.js';
import { check as prv_05 } from './checks/prv-05.js';
import { check as prv_06 } from './checks/prv-06.js';
import { check as prv_07 } from './checks/prv-07.js';
import { check as prv_08 } from './checks/prv-08.js';
import { check as prv_09 } from './checks/prv-09.js';
import { check as prv_10 } from './checks/prv-10.js';
import { check as prv_11 } from './checks/prv-11.js';
import { check as prv_12 } from './checks/prv-12.js';
import { check as prv_13 } from './checks/prv-13.js';
import { check as prv_14 } from './checks/prv-14.js';
import { check as krn_01 } from './checks/krn-01.js';
import { check as krn_02 } from './checks/krn-02.js';
import { check as krn_03 } from './checks/krn-03.js';
import { check as krn_04 } from './checks/krn-04.js';
import { check as krn_05 } from './checks/krn-05.js';
import { check as krn_06 } from './checks/krn-06.js';
import { check as net_01 } from './checks/net-01.js';
import { check as net_02 } from './checks/net-02.js';
import { check as net_03 } from './checks/net-03.js';
import { check as res_01 } from './checks/res-01.js';
import { check as res_02 } from './checks/res-02.js';
import { check as res_03 } from './checks/res-03.js';
import { check as res_04 } from './checks/res-04.js';
import { check as res_05 } from './checks/res-05.js';
import { check as res_06 } from './checks/res-06.js';
import { check as res_07 } from './checks/res-07.js';
import { check as env_01 } from './checks/env-01.js';
import { check as env_02 } from './checks/env-02.js';
import { check as env_03 } from './checks/env-03.js';
import { check as out_01 } from './checks/out-01.js';
import { check as out_02 } from './checks/out-02.js';
import { check as cve_2017_5226 } from './checks/cve-2017-5226.js';
import { check as cve_2021_27851 } from './checks/cve-2021-27851.js';
import { check as cve_2024_27297 } from './checks/cve-2024-27297.js';
import { check as cve_2024_38531 } from './checks/cve-2024-38531.js';
import { check as cve_2024_52867 } from './checks/cve-2024-52867.js';
import { check as cve_2025_46415 } from './checks/cve-2025-46415.js';
import { check as cve_2025_46416 } from './checks/cve-2025-46416.js';
import { check as cve_2025_52992 } from './checks/cve-2025-52992.js';
import { check as guix_killuser } from './checks/guix-killuser.js';

export const CATALOGUE: readonly Check[] = [
  fs_01,
  fs_02,
  fs_03,
  fs_04,
  fs_05,
  fs_06,
  fs_07,
  fs_08,
  fs_09,
  fs_10,
  fs_11,
  fs_12,
  dev_01,
  dev_02,
  dev_03,
  dev_04,
  prv_01,
  prv_02,
  prv_03,
  prv_04,
  prv_05,
  prv_06,
  prv_07,
  prv_08,
  prv_09,
  prv_10,
  prv_11,
  prv_12,
  prv_13,
  prv_14,
  krn_01,
  krn_02,
  krn_03,
  krn_04,
  krn_05,
  krn_06,
  net_01,
  net_02,
  net_03,
  res_01,
  res_02,
  res_03,
  res_04,
  res_05,
  res_06,
  res_07,
  env_01,
  env_02,
  env_03,
  out_01,
  out_02,
  cve_2017_5226,
  cve_2021_27851,
  cve_2024_27297,
  cve_2024_38531,
  cve_2024_52867,
  cve_2025_46415,
  cve_2025_46416,
  cve_2025_52992,
  guix_killuser,
];

export function findCheck(id: string): Check | undefined {
  return CATALOGUE.find((c) => c.id === id);
}
