/** Who is asking: the tenant a request acts for, and whether it may see whole-locker ('*') records. */
export interface Viewer {
  tenant: string;
  /** Administrators also see records of whole-locker operations (tenant '*'). */
  admin: boolean;
}

/** The tenant ids whose records `v` may see, for `tenant_id = ANY($n)` filters. */
export function visibleTenants(v: Viewer): string[] {
  return v.admin ? [v.tenant, '*'] : [v.tenant];
}
