/** The generated error-code files, by path relative to the repository root (see error-tables.mjs). */
export function renderErrorTables(codes: Record<string, { status: number }>): Record<string, string>;
