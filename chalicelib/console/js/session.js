// The signed-in operator (GET /api/admin/me, asked once per sign-in): role, permissions, limits.
// The console shows only the actions whose permission is listed; the server checks them anyway.
let current = null;

export const session = {
  get: () => current,
  set: (me) => { current = me; },
  clear: () => { current = null; },
};

/** Whether the signed-in operator holds ``permission`` (e.g. "refunds.resolve"). */
export function can(permission) {
  return Boolean(current?.permissions?.includes(permission));
}
