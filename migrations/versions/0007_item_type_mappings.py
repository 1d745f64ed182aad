"""item type mappings

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 23:17:19.116510
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('item_type_mapping',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('company_id', sa.Integer(), nullable=False),
    sa.Column('type_xref', sa.String(length=100), nullable=False),
    sa.Column('qbo_type', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("qbo_type IN ('Inventory', 'NonInventory', 'Service')", name=op.f('ck_item_type_mapping_qbo_type')),
    sa.ForeignKeyConstraint(['company_id'], ['company.id'], name=op.f('fk_item_type_mapping_company_id_company'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_type_mapping')),
    sa.UniqueConstraint('company_id', 'type_xref', name='uq_item_type_mapping_type_xref')
    )


def downgrade() -> None:
    op.drop_table('item_type_mapping')
