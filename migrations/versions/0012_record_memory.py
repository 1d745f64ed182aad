"""record memory: facts about ConnectWise records kept as first seen

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-02 07:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op



revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('record_memory',
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_record_memory_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('company_id', 'key', name=op.f('pk_record_memory'))
    )


def downgrade() -> None:
    op.drop_table('record_memory')
